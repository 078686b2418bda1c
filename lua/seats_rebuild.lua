-- seats_rebuild.lua: (re)builds a show's seat state from the record
-- (Postgres) and starts a new epoch. Run when the state is missing (Redis
-- lost it, or the show was never loaded) or found behind what a node has
-- seen (a failover to a replica that lagged), and when a payment finds its
-- seat sold to another order. What the record says wins: every booked seat
-- is BOOKED for its order and every pending order's seats are HELD for it; a
-- hold that lived only in Redis and stands on one of those seats is released
-- whole; a BOOKED seat the record does not know is freed. Other holds stay.
-- KEYS: the common fourteen.
-- ARGV: common five, then ARGV[6] the epoch the caller saw ("" for none),
--       ARGV[7] the new epoch, ARGV[8] order-lock grace (ms), ARGV[9] JSON
--       {"booked": [[seatId, orderId, stamp], ..],
--        "pending": [{"o": orderId, "h": holdId, "u": userId, "s": [seatIds],
--                     "c": createdMs, "e": expiresMs, "t": stamp}, ..],
--        "ended": [[orderId, stamp], ..] (orders that ended lately),
--        "asOf": when the record was read (µs)}
-- The record was read a moment before this runs: an order whose seats
-- changed since (its stamp here is newer) keeps what that change did.
-- Reply: {expired, version, epoch, rebuilt (1|0)}: 0 when the epoch is no
-- longer the one the caller saw (another node rebuilt first): nothing changed.
local seen, new_epoch, grace = ARGV[6], ARGV[7], tonumber(ARGV[8])
local current = K.epoch or ''
if current ~= seen then
  return { 0, tonumber(redis.call('GET', K.version) or '0'), current, 0 }
end
local expired = sweep()
local state = cjson.decode(ARGV[9])
local as_of = tonumber(state.asOf) or 0

local function stamp(order_id, t)
  local last = redis.call('HGET', K.stamps, order_id)
  if not last or tonumber(last) < t then redis.call('HSET', K.stamps, order_id, t) end
end

-- The owner the record gives each seat, in the order given (booked first).
local want, wanted = {}, {}
local function claim(seat, owner)
  if want[seat] == nil then
    want[seat] = owner
    wanted[#wanted + 1] = seat
  end
end
-- Whether the locks already follow a newer state of the order than the record read.
local function newer(order_id, t)
  local last = redis.call('HGET', K.stamps, order_id)
  return last and tonumber(last) > t
end
for _, b in ipairs(state.booked) do
  if not newer(b[2], b[3]) then
    claim(b[1], 'B:' .. b[2])
    stamp(b[2], b[3])
  end
end
for _, p in ipairs(state.pending) do
  if not newer(p.o, p.t) then
    for _, seat in ipairs(p.s) do claim(seat, 'O:' .. p.o) end
    stamp(p.o, p.t)
    -- The live record only: a tombstone of it is not the order's lock.
    local raw = redis.call('HGET', K.holds, p.h)
    local rec = raw and cjson.decode(raw)
    if not rec or rec.o ~= p.o then
      hold_put(p.h, { u = p.u, s = p.s, st = 'HELD', c = p.c, e = p.c, o = p.o, oc = p.c, oe = p.e })
      if redis.call('HGET', K.users, p.u) == p.h then redis.call('HDEL', K.users, p.u) end
    end
    redis.call('ZADD', K.deadlines, p.e + grace, p.h)
  end
end

for _, seat in ipairs(wanted) do
  local owner = want[seat]
  local cur = redis.call('HGET', K.seats, seat)
  if cur ~= owner then
    if cur and string.sub(cur, 1, 2) == 'H:' then
      local id = string.sub(cur, 3)
      local rec = hold_get(id)
      if rec and not rec.o and rec.st == 'HELD' then hold_end(id, rec, 'RELEASED', K.now) end
    end
    redis.call('HSET', K.seats, seat, owner)
    change(seat, string.sub(owner, 1, 2) == 'B:' and 'BOOKED' or 'HELD')
  end
end

-- Booked seats the record does not know (a late message of an order since
-- cancelled), unless booked after the record was read and not ended since
-- by the record (a replica that lost the release keeps the booking's
-- stamp, which may be newer than the read); in seat order so every engine
-- reports them alike.
local ended = {}
for _, e in ipairs(state.ended or {}) do ended[e[1]] = e[2] end
local function ended_since(order_id)
  local t = ended[order_id]
  if not t then return false end
  local last = redis.call('HGET', K.stamps, order_id)
  return not last or tonumber(last) <= t
end
local stale = {}
local all = redis.call('HGETALL', K.seats)
for i = 1, #all, 2 do
  local owner = all[i + 1]
  if string.sub(owner, 1, 2) == 'B:' and want[all[i]] == nil then
    local order_id = string.sub(owner, 3)
    if ended_since(order_id) or not newer(order_id, as_of) then
      stale[#stale + 1] = all[i]
    end
  end
end
table.sort(stale)
for _, seat in ipairs(stale) do
  redis.call('HDEL', K.seats, seat)
  change(seat, 'AVAILABLE')
end

-- A new epoch is always news: it is published even when no seat changed
-- (the version moves only with a change), and every node's feed resyncs on
-- an epoch it has not seen.
K.epoch = new_epoch
redis.call('SET', K.epoch_key, new_epoch)
local v
if #changes.order > 0 then
  v = announce()
else
  v = tonumber(redis.call('GET', K.version) or '0')
  redis.call(K.pubcmd, K.channel,
    cjson.encode({ showId = K.show, epoch = new_epoch, version = v, changes = {} }))
end
return { expired, v, new_epoch, 1 }
