-- wr_lease.lua: the show's admission leader. Acquires the lease if free,
-- renews it if ours; each acquisition takes a new fencing number, so a
-- paused ex-leader's token never matches again (wr_admit checks it).
-- KEYS: 1 lease STRING "<node>/<fence>", 2 fence STRING counter
-- ARGV: 1 node id, 2 ttl (ms)
-- Reply: the lease token when we hold it, false otherwise
local current = redis.call('GET', KEYS[1])
local mine = ARGV[1] .. '/'
if current then
  if string.sub(current, 1, #mine) == mine then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return current
  end
  return false
end
local token = mine .. redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
return token
