-- waitlist_standing.lua: where a shopper stands on the show's waiting list
-- (`wait_standing`): a read, no sweep, no change. An offer past its TTL reads
-- as ended before the sweeper moves its seats on.
-- KEYS: the common fourteen. ARGV: common five, then ARGV[6] userId.
-- Reply: {0, version, epoch, standing...} (common.lua's `standing`).
local st = standing(ARGV[6])
local reply = { 0, tonumber(redis.call('GET', K.version) or '0'), K.epoch or '' }
for _, x in ipairs(st) do reply[#reply + 1] = x end
return reply
