-- waitlist_leave.lua: leave the show's waiting list (`wait_leave` in
-- src/domain/seats/waitlist.rs). A waiter gives up their place; a live offer
-- is given back, and its seats go to the next waiter in the same step.
-- KEYS: the common fourteen. ARGV: common five, then ARGV[6] userId.
-- Reply: {expired, version, epoch, standing...}: where the user stood
--        (common.lua's `standing`), {"NONE"} when neither waiting nor offered.
local user = ARGV[6]
if not K.epoch then return redis.error_reply(NOSTATE) end
local expired = sweep()
local st = standing(user)
if st[1] == 'WAITING' then
  wait_remove(user)
elseif st[1] == 'OFFERED' then
  hold_end(st[2], hold_get(st[2]), 'RELEASED', K.now)
else
  st = { 'NONE' }
end
local reply = { expired, announce(), K.epoch }
for _, x in ipairs(st) do reply[#reply + 1] = x end
return reply
