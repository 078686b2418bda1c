-- wr_open.lua: places one chunk of the lottery block (wr_open_begin.lua
-- reserved its scores). The leader computes the lottery order
-- (ascending HMAC-SHA256(seed, userId) over the entrants) and sends each
-- entrant with its rank; an entrant no longer in the pre-queue (placed by
-- an earlier run, or gone) is skipped, so a retry or a new leader's rerun
-- changes nothing twice.
-- KEYS: 1 queue, 2 pre, 3 events, 4 lease
-- ARGV: 1 lease token, 2 base score, 3 channel, 4 "PUBLISH"|"SPUBLISH",
--       5.. pairs of rank, userId
-- Reply: {moved, still in the pre-queue} | {-1} not the leader
if redis.call('GET', KEYS[4]) ~= ARGV[1] then return { -1 } end
local base, moved = tonumber(ARGV[2]), 0
for i = 5, #ARGV, 2 do
  local user = ARGV[i + 1]
  if redis.call('SREM', KEYS[2], user) == 1 then
    redis.call('ZADD', KEYS[1], base + tonumber(ARGV[i]), user)
    moved = moved + 1
  end
end
if moved > 0 then
  local ev = redis.call('INCR', KEYS[3])
  redis.call(ARGV[4], ARGV[3], cjson.encode({ seq = ev, type = 'reset', queueLength = redis.call('ZCARD', KEYS[1]) }))
end
return { moved, redis.call('SCARD', KEYS[2]) }
