-- seats_expire.lua: the sweeper's pass over one show: expire every hold past
-- its deadline and drop hold records whose retention has run out.
-- KEYS: the common eight. ARGV: common five, then ARGV[6] max records to drop.
-- Reply: {expired, version, epoch, dropped}
local limit = tonumber(ARGV[6])
if not K.epoch then return redis.error_reply(NOSTATE) end
local expired = sweep()
local old = redis.call('ZRANGEBYSCORE', K.gc, '-inf', K.now, 'LIMIT', 0, limit)
for _, id in ipairs(old) do
  redis.call('HDEL', K.holds, id)
  redis.call('ZREM', K.gc, id)
end
return { expired, announce(), K.epoch, #old }
