-- lease_release.lua: hands a lease back at shutdown if it is still the
-- caller's, so the next holder (the seat sweeper's, a room's admission
-- leader's) takes over at once instead of after the lease's TTL.
-- KEYS: 1 lease STRING. ARGV: 1 the holder's prefix: its node id for the
-- sweeper's lease ("<node>"), "<node>/" for a room's ("<node>/<fence>").
-- Reply: 1 released, 0 not the caller's (or no lease).
local current = redis.call('GET', KEYS[1])
if current and string.sub(current, 1, #ARGV[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
