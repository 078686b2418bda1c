-- seats_expire.lua: the sweeper's call on one show: expire holds past their
-- deadline (with waiters, at most common.lua's SWEEP_BUDGET seats a call),
-- serve the waiting list, and retire or drop generations of tombstones as
-- they come due (the deadline "~gc").
-- KEYS: the common fourteen. ARGV: common five.
-- Reply: {expired, version, epoch, more, next, tombstones}: more is 1 when
-- holds are still due (the sweeper calls again); next is the show's next
-- deadline (ms; -1 when nothing is due ever), so the sweeper knows when to
-- come back; tombstones is how many ended holds are kept.
if not K.epoch then return redis.error_reply(NOSTATE) end
local expired = sweep()
serve_always = true
local v = announce()
local first = redis.call('ZRANGE', K.deadlines, 0, 0, 'WITHSCORES')
local kept = 0
for _, gen in ipairs({ K.ended, K.ended_old }) do
  local n = redis.call('HLEN', gen)
  if n > 0 then kept = kept + n - 1 end
end
return { expired, v, K.epoch, sweep_more and 1 or 0, first[2] and tonumber(first[2]) or -1, kept }
