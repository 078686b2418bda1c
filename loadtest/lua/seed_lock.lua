-- The seed architecture document's lock script ("Atomic Locking with Lua
-- Script"), as a ceiling for `sg-load bench`: a GET per seat, then a SET
-- with a TTL per seat. Made runnable in Redis (no `os.time`; a conflict
-- answers 0, which redis-benchmark counts, where the seed's Lua table with
-- string keys would not survive the reply), otherwise as written.
-- KEYS[1..N] seat keys; ARGV: 1 userId, 2 holdId, 3 TTL (s)
local userId, holdId, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
for _, key in ipairs(KEYS) do
  local existing = redis.call('GET', key)
  if existing then
    local existingUserId = string.match(existing, '^([^:]+)')
    if existingUserId ~= userId then
      return 0
    end
  end
end
local value = userId .. ':' .. holdId
for _, key in ipairs(KEYS) do
  redis.call('SET', key, value, 'EX', ttl)
end
return 1
