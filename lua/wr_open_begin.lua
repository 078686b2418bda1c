-- wr_open_begin.lua (after wr_opening.lua): the leader begins, or resumes,
-- the opening of the pre-queue. Only for the lease holder, and only once
-- Redis TIME has reached opensAt, so no join enters the pre-queue after the
-- snapshot (wr_join decides by the same clock). A rerun (a retry, a new
-- leader) answers the same snapshot, and first places anyone in the
-- pre-queue the snapshot lacks behind the block. With no opensAt (never
-- set, or cleared), whoever is in the pre-queue opens now, whatever the
-- mode (a room switched from RANDOM to FIFO still has its pre-queue).
-- KEYS: 1 queue, 2 pre, 3 seq, 4 config, 5 lease, 6 entrants
-- ARGV: 1 lease token
-- Reply: {"STALE"} not the leader | {"WAIT", opensAt} too early
--      | {"OPEN", base, pending}: entrant of lottery rank r goes to base + r;
--        `pending` of them are still in the pre-queue (0: nothing to do)
local queue, pre, seq, config, lease, entrants = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
if redis.call('GET', lease) ~= ARGV[1] then return { 'STALE' } end
local opens, key, opened_for = opening_of(config)
if opens ~= nil and shared_now() < opens then return { 'WAIT', tostring(opens) } end

local base, n = begin_opening(pre, seq, config, entrants, key, opened_for)
if base ~= nil then return { 'OPEN', tostring(base), n } end

for _, user in ipairs(redis.call('SDIFF', pre, entrants)) do
  redis.call('SREM', pre, user)
  redis.call('ZADD', queue, redis.call('INCR', seq), user)
end
return { 'OPEN', redis.call('HGET', config, 'openBase'), redis.call('SCARD', pre) }
