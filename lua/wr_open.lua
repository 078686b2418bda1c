-- wr_open.lua: the opening of a RANDOM pre-queue, one chunk at a time. The
-- leader computes the lottery order (HMAC-SHA256(seed, userId)) and sends it
-- here in chunks; lottery places get scores below every arrival after the
-- opening (base is -total), so later joiners queue behind all of them.
-- KEYS: 1 queue, 2 pre, 3 events
-- ARGV: 1 base score, 2 channel, 3 "PUBLISH"|"SPUBLISH", 4.. userIds in lottery order
-- Reply: users moved
local base, moved = tonumber(ARGV[1]), 0
for i = 4, #ARGV do
  if redis.call('SREM', KEYS[2], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[1], base + i - 4, ARGV[i])
    moved = moved + 1
  end
end
local ev = redis.call('INCR', KEYS[3])
redis.call(ARGV[3], ARGV[2], cjson.encode({ seq = ev, type = 'reset', queueLength = redis.call('ZCARD', KEYS[1]) }))
return moved
