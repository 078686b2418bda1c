-- seats_extend_for_order.lua: turn an active hold into an order's lock.
-- The seats stay HELD until the order ends (the order store then runs
-- seats_book or seats_release_order); the lock is freed by the sweep at
-- orderExpiresAt + grace only if the order store never does.
-- KEYS: the common fourteen. ARGV: common five, then ARGV[6] userId, ARGV[7] holdId,
--       ARGV[8] orderId, ARGV[9] order ttl (ms), ARGV[10] grace (ms).
-- Reply: {expired, version, epoch, "ATTACHED", orderId, orderExpiresAt, createdAt}
--      | {expired, version, epoch, "EXISTING", orderId, orderExpiresAt, createdAt}
--      | {expired, version, epoch, "NOT_FOUND"} | {expired, version, epoch, "EXPIRED"}
--      | {expired, version, epoch, "NOT_ACTIVE", status}
-- A hold that no longer owns all its seats (one was booked by an order
-- whose lock had been lost) cannot become an order: it is released.
local user, hold_id, order_id = ARGV[6], ARGV[7], ARGV[8]
local order_ttl, grace = tonumber(ARGV[9]), tonumber(ARGV[10])
if not K.epoch then return redis.error_reply(NOSTATE) end
local expired = sweep()
local rec = hold_get(hold_id)
local outcome
if rec == nil or rec.u ~= user then
  outcome = { 'NOT_FOUND' }
elseif rec.o then
  outcome = { 'EXISTING', rec.o, rec.oe, rec.oc }
elseif rec.st == 'EXPIRED' then
  outcome = { 'EXPIRED' }
elseif rec.st ~= 'HELD' then
  outcome = { 'NOT_ACTIVE', rec.st }
else
  local lost = false
  for _, seat in ipairs(rec.s) do
    if redis.call('HGET', K.seats, seat) ~= 'H:' .. hold_id then lost = true end
  end
  if lost then
    hold_end(hold_id, rec, 'RELEASED', K.now)
    outcome = { 'NOT_ACTIVE', 'RELEASED' }
  end
end
if outcome == nil then
  local owner = 'O:' .. order_id
  for _, seat in ipairs(rec.s) do redis.call('HSET', K.seats, seat, owner) end
  rec.o = order_id
  rec.oc = K.now
  rec.oe = K.now + order_ttl
  hold_put(hold_id, rec)
  if redis.call('HGET', K.users, user) == hold_id then redis.call('HDEL', K.users, user) end
  redis.call('ZADD', K.deadlines, rec.oe + grace, hold_id)
  if rec.w then redis.call('HINCRBY', K.waitlist, 'taken', 1) end
  outcome = { 'ATTACHED', order_id, rec.oe, rec.oc }
end
local v = announce()
local reply = { expired, v, K.epoch }
for _, x in ipairs(outcome) do reply[#reply + 1] = x end
return reply
