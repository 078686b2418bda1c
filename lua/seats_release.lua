-- seats_release.lua: the owner gives a hold back before it expires.
-- KEYS: the common fourteen (fifteen when charged). ARGV: common five, then ARGV[6] userId, ARGV[7] holdId.
-- Reply: {expired, version, epoch, "RELEASED"} | {expired, version, epoch, "NOT_FOUND"}
--        | {expired, version, epoch, "NOT_ACTIVE", status} where status is the hold's
--        status, or "ORDERED" when it has become an order.
local user, hold_id = ARGV[6], ARGV[7]
if not K.epoch then return redis.error_reply(NOSTATE) end
local limited = charge()
if limited then return limited end
local expired = sweep()
local rec = hold_get(hold_id)
local outcome
if rec == nil or rec.u ~= user then
  outcome = { 'NOT_FOUND' }
elseif rec.o then
  outcome = { 'NOT_ACTIVE', 'ORDERED' }
elseif rec.st ~= 'HELD' then
  outcome = { 'NOT_ACTIVE', rec.st }
else
  hold_end(hold_id, rec, 'RELEASED', K.now)
  outcome = { 'RELEASED' }
end
local v = announce()
local reply = { expired, v, K.epoch }
for _, x in ipairs(outcome) do reply[#reply + 1] = x end
return reply
