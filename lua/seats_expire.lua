-- seats_expire.lua: the sweeper's call on one show: expire holds past their
-- deadline (with waiters, at most common.lua's SWEEP_BUDGET seats a call),
-- serve the waiting list, and drop hold records whose retention has run out.
-- KEYS: the common thirteen. ARGV: common five, then ARGV[6] max records to drop.
-- Reply: {expired, version, epoch, dropped, more}: more is 1 when holds are
-- still due (the sweeper calls again).
local limit = tonumber(ARGV[6])
if not K.epoch then return redis.error_reply(NOSTATE) end
local expired = sweep()
serve_always = true
local old = redis.call('ZRANGEBYSCORE', K.gc, '-inf', K.now, 'LIMIT', 0, limit)
for _, id in ipairs(old) do
  redis.call('HDEL', K.holds, id)
  redis.call('ZREM', K.gc, id)
end
return { expired, announce(), K.epoch, #old, sweep_more and 1 or 0 }
