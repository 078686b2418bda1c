-- wr_ranks.lua: where some shoppers stand, as of one event sequence number
-- (a node's pipelined re-read after it saw a gap in the events).
-- KEYS: 1 queue, 2 events. ARGV: userIds
-- Reply: {eventSeq, queueLength, score1 or false, rank1 or false, ...}
local reply = { tonumber(redis.call('GET', KEYS[2]) or '0'), redis.call('ZCARD', KEYS[1]) }
for i = 1, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  reply[#reply + 1] = score or false
  reply[#reply + 1] = score and redis.call('ZRANK', KEYS[1], ARGV[i]) or false
end
return reply
