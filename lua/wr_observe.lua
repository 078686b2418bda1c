-- wr_observe.lua: what the sale has shown so far, for the leader's outlook
-- estimate and the operator's funnel, read at one moment. Run by the leader
-- a couple of times a second, not per shopper: it reads the seat hash once.
-- KEYS: 1 stats, 2 admitted, 3 seats (the show's seat-lock hash), 4 held set,
--       5 ordered set, 6 queue
-- ARGV: 1 now (ms), 2 stale until (ms): admissions expiring before it began
--       before the deciding window
-- Reply: {booked, held, active, stale, heldShoppers, orderedShoppers,
--         queueLength, stats field, value, ...}
local stats, admitted, seats, held_set, ordered_set, queue =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local now, stale_until = tonumber(ARGV[1]), tonumber(ARGV[2])
local booked, held = 0, 0
for _, owner in ipairs(redis.call('HVALS', seats)) do
  if string.sub(owner, 1, 2) == 'B:' then booked = booked + 1 else held = held + 1 end
end
local active = redis.call('ZCOUNT', admitted, '(' .. now, '+inf')
local stale = 0
if stale_until > now then stale = redis.call('ZCOUNT', admitted, '(' .. now, '(' .. stale_until) end
local reply = { booked, held, active, stale, redis.call('SCARD', held_set), redis.call('SCARD', ordered_set),
  redis.call('ZCARD', queue) }
for _, v in ipairs(redis.call('HGETALL', stats)) do reply[#reply + 1] = v end
return reply
