-- seats_snapshot.lua: the show's seat state as of one version. Sweeps first, so
-- a snapshot never shows a lock past its deadline and the state at a version
-- is the same for every reader.
-- KEYS: the common six. ARGV: common five.
-- Reply: {expired, version, {seatId, owner, seatId, owner, ...}}
local expired = sweep()
local v = announce()
return { expired, v, redis.call('HGETALL', K.seats) }
