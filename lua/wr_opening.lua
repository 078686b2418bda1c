-- wr_opening.lua: the opening of a pre-queue, prepended to wr_join.lua and
-- wr_open_begin.lua (src/redis/scripts.rs), so both decide by one rule.
-- The room's opensAt (ms; empty: none) and preQueue (RANDOM|FIFO) are
-- fields of its config HASH; openedFor and openBase record the opening
-- begun last.

-- Redis TIME in ms: the one clock every node shares.
local function shared_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The room's opensAt (a number, or nil when none), the key its opening is
-- recorded under, the opening begun last, and the mode: one HMGET.
local function opening_of(config)
  local f = redis.call('HMGET', config, 'opensAt', 'openedFor', 'preQueue')
  local raw = f[1] or ''
  return tonumber(raw), raw == '' and 'none' or raw, f[2], f[3]
end

-- Begins the opening `key` unless it has begun: snapshots the pre-queue
-- into `entrants` and reserves one arrival number per entrant, so the
-- lottery block sits behind everyone queued before this moment and ahead
-- of everyone after it, however long placing it takes. The first call
-- after opensAt, a join's or the leader's, is the moment. Answers the
-- block's base score and size when it began the opening now.
local function begin_opening(pre, seq, config, entrants, key, opened_for)
  if opened_for == key then return nil end
  redis.call('DEL', entrants)
  local n = redis.call('SCARD', pre)
  local base = 0
  if n > 0 then
    redis.call('SUNIONSTORE', entrants, pre)
    base = redis.call('INCRBY', seq, n) - n + 1
  end
  redis.call('HSET', config, 'openedFor', key, 'openBase', base)
  return base, n
end

