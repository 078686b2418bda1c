-- wr_settle.lua: an admission ends before its time (the shopper's order was
-- confirmed, or they left), and the outlook learns how it ended: bought n
-- seats (and how long after admission), or nothing. Only an admission still
-- in the set counts, so a confirmation retried counts once.
-- KEYS: 1 admitted, 2 stats
-- ARGV: 1 userId, 2 seats bought (0: none), 3 now (ms), 4 admission ttl (ms),
--       5.. upper bounds (ms) of the buying-time buckets
-- A purchase counts its seats ("bought:<n>"), its buying time ("buyMs") and
-- the time's bucket ("buyIn:<i>", 0-based, one past the last bound for the rest).
-- Reply: 1 when the admission was ended now, 0 when there was none
local admitted, stats = KEYS[1], KEYS[2]
local expires = redis.call('ZSCORE', admitted, ARGV[1])
if not expires then return 0 end
redis.call('ZREM', admitted, ARGV[1])
local seats = tonumber(ARGV[2])
if seats > 0 then
  redis.call('HINCRBY', stats, 'bought:' .. seats, 1)
  local took = tonumber(ARGV[3]) - (tonumber(expires) - tonumber(ARGV[4]))
  if took < 0 then took = 0 end
  redis.call('HINCRBY', stats, 'buyMs', math.floor(took))
  local bucket = 0
  for i = 5, #ARGV do
    if took < tonumber(ARGV[i]) then break end
    bucket = bucket + 1
  end
  redis.call('HINCRBY', stats, 'buyIn:' .. bucket, 1)
else
  redis.call('HINCRBY', stats, 'walked', 1)
end
return 1
