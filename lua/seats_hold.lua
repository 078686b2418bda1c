-- seats_hold.lua: lock every requested seat for one user, or none.
-- KEYS: the common fourteen (fifteen when charged) (common.lua).
-- ARGV: common five, then ARGV[6] userId, ARGV[7] holdId, ARGV[8] ttl (ms),
--       ARGV[9..] seatIds (validated, distinct, on the map, not UNAVAILABLE).
-- Reply: {expired, version, epoch, 1, hold record JSON (as stored, after the
--        script's changes; its "p" names the replaced hold)} on success;
--        {expired, version, epoch, 0, {conflicting seats}} on conflict: only the
--        seats asked for, so a conflict (the common answer in a sale) costs
--        O(seats asked); the node lists what is available from its replica.
-- The user's previous active hold on this show is released in the same step
-- (its seats are not conflicts); a failed hold leaves it untouched. Run
-- twice with the same holdId (a client retry), it answers the first run's
-- success and changes nothing.
local user, hold_id, ttl = ARGV[6], ARGV[7], tonumber(ARGV[8])
if not K.epoch then return redis.error_reply(NOSTATE) end
local limited = charge()
if limited then return limited end
local expired = sweep()
-- What the sweep freed goes to waiters before this request takes a seat.
serve_caller = user
serve()
local again = hold_get(hold_id)
if again and again.u == user then
  return { expired, announce(), K.epoch, 1, hold_raw(hold_id) }
end
local prev = redis.call('HGET', K.users, user)
local mine = prev and ('H:' .. prev) or nil

local conflicts = {}
for i = 9, #ARGV do
  local owner = redis.call('HGET', K.seats, ARGV[i])
  if owner and owner ~= mine then conflicts[#conflicts + 1] = ARGV[i] end
end
if #conflicts > 0 then
  local v = announce()
  return { expired, v, K.epoch, 0, conflicts }
end

local seats = {}
for i = 9, #ARGV do seats[#seats + 1] = ARGV[i] end
local v = take_seats(user, hold_id, ttl, seats, prev)
return { expired, v, K.epoch, 1, hold_raw(hold_id) }
