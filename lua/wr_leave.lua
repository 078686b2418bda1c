-- wr_leave.lua: shoppers leave the queue, by choice or by abandonment.
-- With users in ARGV[6..] it removes those; with none it removes every user
-- not seen since the cutoff (at most `limit`). One "left" event carries the
-- scores of every queued shopper removed, so each node can move the
-- positions of its own sockets without reading the queue.
-- KEYS: 1 queue, 2 pre, 3 seen, 4 stats, 5 events
-- ARGV: 1 channel, 2 "PUBLISH"|"SPUBLISH", 3 stats counter ("left"|"abandoned"),
--       4 cutoff (ms), 5 limit, 6.. userIds
-- Reply: number of shoppers removed
local queue, pre, seen, stats, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local users = {}
if #ARGV >= 6 then
  for i = 6, #ARGV do users[#users + 1] = ARGV[i] end
else
  users = redis.call('ZRANGEBYSCORE', seen, '-inf', ARGV[4], 'LIMIT', 0, tonumber(ARGV[5]))
end
local scores, removed = {}, 0
for _, user in ipairs(users) do
  local score = redis.call('ZSCORE', queue, user)
  if score then
    redis.call('ZREM', queue, user)
    scores[#scores + 1] = tonumber(score)
    removed = removed + 1
  elseif redis.call('SREM', pre, user) == 1 then
    removed = removed + 1
  end
  redis.call('ZREM', seen, user)
end
if removed > 0 then redis.call('HINCRBY', stats, ARGV[3], removed) end
if #scores > 0 then
  local ev = redis.call('INCR', events)
  redis.call(ARGV[2], ARGV[1], cjson.encode({ seq = ev, type = 'left', scores = scores,
    queueLength = redis.call('ZCARD', queue) }))
end
return removed
