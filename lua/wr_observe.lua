-- wr_observe.lua: what the sale has shown so far, for the leader's outlook
-- estimate and the operator's funnel, read at one moment. Run by the leader
-- a couple of times a second, not per shopper: it reads the seat hash once.
-- KEYS: 1 stats, 2 admitted, 3 seats (the show's seat-lock hash), 4 held set,
--       5 ordered set, 6 queue
-- ARGV: 1 now (ms), 2 admission ttl (ms), 3.. upper bounds (ms) of the age
--       buckets (an admission's age is now - (expiry - ttl))
-- Reply: {booked, held, heldShoppers, orderedShoppers, queueLength,
--         admissions holding nothing per age bucket (one more than the
--         bounds)...,
--         "stats", stats field, value, ...}
local stats, admitted, seats, held_set, ordered_set, queue =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local booked, held = 0, 0
for _, owner in ipairs(redis.call('HVALS', seats)) do
  if string.sub(owner, 1, 2) == 'B:' then booked = booked + 1 else held = held + 1 end
end
local reply = { booked, held, redis.call('SCARD', held_set), redis.call('SCARD', ordered_set),
  redis.call('ZCARD', queue) }
-- Active admissions (expiry > now) of shoppers who hold nothing yet, by
-- age: those holding are in the held seats already. The walk is over the
-- active admissions (at most maxActive); past MAX_WALK it counts them all
-- by age with ZCOUNT instead, holders included.
local MAX_WALK = 20000
local bounds = {}
for i = 3, #ARGV do bounds[#bounds + 1] = tonumber(ARGV[i]) end
local counts = {}
for j = 1, #bounds + 1 do counts[j] = 0 end
local function bucket(age)
  for j = 1, #bounds do
    if age < bounds[j] then return j end
  end
  return #bounds + 1
end
if redis.call('ZCOUNT', admitted, '(' .. now, '+inf') <= MAX_WALK then
  local active = redis.call('ZRANGEBYSCORE', admitted, '(' .. now, '+inf', 'WITHSCORES')
  for i = 1, #active, 2 do
    if redis.call('SISMEMBER', held_set, active[i]) == 0 then
      local j = bucket(now - (tonumber(active[i + 1]) - ttl))
      counts[j] = counts[j] + 1
    end
  end
else
  -- Ages in [lo, hi) are expiries in (now + ttl - hi, now + ttl - lo].
  local lo = 0
  for j = 1, #bounds + 1 do
    local hi = bounds[j]
    local min = now
    if hi then min = math.max(now, now + ttl - hi) end
    counts[j] = redis.call('ZCOUNT', admitted, '(' .. min, now + ttl - lo)
    if hi then lo = hi end
  end
end
for j = 1, #counts do reply[#reply + 1] = counts[j] end
reply[#reply + 1] = 'stats'
for _, v in ipairs(redis.call('HGETALL', stats)) do reply[#reply + 1] = v end
return reply
