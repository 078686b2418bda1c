-- seats_snapshot.lua: the show's seat state as of one version. Sweeps first, so
-- a snapshot never shows a lock past its deadline and the state at a version
-- is the same for every reader.
-- KEYS: the common fourteen. ARGV: common five.
-- Reply: {expired, version, epoch, {seatId, owner, seatId, owner, ...}}
if not K.epoch then return redis.error_reply(NOSTATE) end
local expired = sweep()
local v = announce()
return { expired, v, K.epoch, redis.call('HGETALL', K.seats) }
