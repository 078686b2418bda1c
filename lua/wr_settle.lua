-- wr_settle.lua: an admission ends before its time (the shopper's order was
-- confirmed, or they left), and the outlook learns how it ended: bought n
-- seats (and how long after admission), or nothing. Only an admission still
-- in the set counts, so a confirmation retried counts once.
-- KEYS: 1 admitted, 2 stats
-- ARGV: 1 userId, 2 seats bought (0: none), 3 now (ms), 4 admission ttl (ms)
-- Reply: 1 when the admission was ended now, 0 when there was none
local admitted, stats = KEYS[1], KEYS[2]
local expires = redis.call('ZSCORE', admitted, ARGV[1])
if not expires then return 0 end
redis.call('ZREM', admitted, ARGV[1])
local seats = tonumber(ARGV[2])
if seats > 0 then
  redis.call('HINCRBY', stats, 'bought:' .. seats, 1)
  local took = tonumber(ARGV[3]) - (tonumber(expires) - tonumber(ARGV[4]))
  if took > 0 then redis.call('HINCRBY', stats, 'buyMs', math.floor(took)) end
else
  redis.call('HINCRBY', stats, 'walked', 1)
end
return 1
