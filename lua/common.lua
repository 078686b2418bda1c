-- common.lua: the helpers every seat script shares. It is prepended to each
-- script when the script is loaded (src/redis/scripts.rs), so every script is
-- still one atomic EVALSHA.
--
-- Common KEYS (every key of a show shares one hash tag, so all of them live in
-- one Redis Cluster slot):
--   KEYS[1] seats      HASH  seatId -> owner: "H:<holdId>" held, "O:<orderId>" held
--                            for an order, "B:<orderId>" booked. Absent = available.
--   KEYS[2] holds      HASH  holdId -> JSON {u, s, st, c, e, o?, oe?, t?}
--   KEYS[3] users      HASH  userId -> holdId of the user's active, un-ordered hold
--   KEYS[4] deadlines  ZSET  holdId scored by the ms at which its seats must be freed
--   KEYS[5] gc         ZSET  holdId scored by the ms at which its record may be dropped
--   KEYS[6] version    STRING the show's seat-change counter
--   KEYS[7] epoch      STRING which rebuild of the show's state this is; absent
--                            means the state is missing (Redis lost it, or the
--                            show was never loaded): every script but
--                            seats_rebuild then refuses with NOSTATE, so nothing
--                            is sold before the state is rebuilt from Postgres.
--   KEYS[8] stamps     HASH  orderId -> the order state (updated_at, µs) whose
--                            seat change was applied last; older ones are refused
-- (Redis answers a missing key or field as false, not nil.)
-- Common ARGV:
--   ARGV[1] showId, ARGV[2] channel, ARGV[3] "PUBLISH" or "SPUBLISH",
--   ARGV[4] now (ms since the epoch), ARGV[5] record retention (ms)
-- Every script replies {expiredHolds, version, epoch, ...}: how many holds its
-- in-line sweep expired, and the show's version and epoch after the script.

local K = {
  seats = KEYS[1], holds = KEYS[2], users = KEYS[3],
  deadlines = KEYS[4], gc = KEYS[5], version = KEYS[6],
  epoch_key = KEYS[7], stamps = KEYS[8],
  show = ARGV[1], channel = ARGV[2], pubcmd = ARGV[3],
  now = tonumber(ARGV[4]), retention = tonumber(ARGV[5]),
}
K.epoch = redis.call('GET', K.epoch_key)
-- The error every script but seats_rebuild answers while the state is missing.
local NOSTATE = 'NOSTATE show ' .. K.show .. ' has no seat state; rebuild it from the record'

-- Seat changes of this script, in first-touched order, last status wins,
-- so a seat freed by expiry and taken again in the same script is one change.
local changes = { order = {}, status = {} }
local function change(seat, status)
  if changes.status[seat] == nil then changes.order[#changes.order + 1] = seat end
  changes.status[seat] = status
end

local function hold_get(id)
  local raw = redis.call('HGET', K.holds, id)
  if raw then return cjson.decode(raw) end
  return nil
end

local function hold_put(id, rec)
  redis.call('HSET', K.holds, id, cjson.encode(rec))
end

-- Ends an un-ordered hold: frees the seats it still owns, records the terminal
-- status and schedules the record's removal.
local function hold_end(id, rec, status, at)
  local owner = 'H:' .. id
  for _, seat in ipairs(rec.s) do
    if redis.call('HGET', K.seats, seat) == owner then
      redis.call('HDEL', K.seats, seat)
      change(seat, 'AVAILABLE')
    end
  end
  rec.st = status
  rec.t = at
  hold_put(id, rec)
  if redis.call('HGET', K.users, rec.u) == id then redis.call('HDEL', K.users, rec.u) end
  redis.call('ZREM', K.deadlines, id)
  redis.call('ZADD', K.gc, K.now + K.retention, id)
end

-- Frees what is due: holds past expiresAt, and seats of orders whose lock
-- outlived the order's expiry plus grace (the order store lost track of them).
-- Runs at the start of every script, so no script ever sees a stale lock.
local function sweep()
  local due = redis.call('ZRANGEBYSCORE', K.deadlines, '-inf', K.now)
  local expired = 0
  for _, id in ipairs(due) do
    local rec = hold_get(id)
    if rec == nil then
      redis.call('ZREM', K.deadlines, id)
    elseif rec.o then
      local owner = 'O:' .. rec.o
      for _, seat in ipairs(rec.s) do
        if redis.call('HGET', K.seats, seat) == owner then
          redis.call('HDEL', K.seats, seat)
          change(seat, 'AVAILABLE')
        end
      end
      redis.call('ZREM', K.deadlines, id)
      redis.call('ZADD', K.gc, K.now + K.retention, id)
    elseif rec.st == 'HELD' then
      hold_end(id, rec, 'EXPIRED', rec.e)
      expired = expired + 1
    else
      redis.call('ZREM', K.deadlines, id)
    end
  end
  return expired
end

-- Bumps the version once and publishes one delta for all of this script's
-- changes; a script that changed nothing leaves the version alone.
local function announce()
  if #changes.order == 0 then
    return tonumber(redis.call('GET', K.version) or '0')
  end
  local v = redis.call('INCR', K.version)
  local list = {}
  for i, seat in ipairs(changes.order) do
    list[i] = { seatId = seat, status = changes.status[seat] }
  end
  redis.call(K.pubcmd, K.channel,
    cjson.encode({ showId = K.show, epoch = K.epoch, version = v, changes = list }))
  return v
end

-- Whether a seat change for this order state is newer than the last one
-- applied (and records it): a late or repeated message changes nothing.
local function fresh(order_id, stamp)
  local last = redis.call('HGET', K.stamps, order_id)
  if last and tonumber(last) >= stamp then return false end
  redis.call('HSET', K.stamps, order_id, stamp)
  return true
end

-- Locks `seats` (none of them another shopper's) for a new hold of `user`,
-- releases the user's previous hold `prev` (if any) in the same step, and
-- announces: seats_hold and seats_hold_best end the same way.
local function take_seats(user, hold_id, ttl, seats, prev)
  local owner = 'H:' .. hold_id
  for _, seat in ipairs(seats) do
    if not redis.call('HGET', K.seats, seat) then change(seat, 'HELD') end
    redis.call('HSET', K.seats, seat, owner)
  end
  if prev then
    local rec = hold_get(prev)
    if rec then hold_end(prev, rec, 'RELEASED', K.now) end
  end
  local expires = K.now + ttl
  hold_put(hold_id, { u = user, s = seats, st = 'HELD', c = K.now, e = expires, p = prev or nil })
  redis.call('HSET', K.users, user, hold_id)
  redis.call('ZADD', K.deadlines, expires, hold_id)
  return announce()
end
