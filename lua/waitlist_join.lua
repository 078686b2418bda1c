-- waitlist_join.lua: join the show's waiting list for returned seats
-- (src/domain/seats/waitlist.rs, `wait_join`, is its specification).
-- KEYS: the common fourteen (fifteen when charged) (common.lua).
-- ARGV: common five, then ARGV[6] userId, ARGV[7] quantity, ARGV[8] the hold
--       id the waiter's offer will have, ARGV[9] an offer's TTL (ms),
--       ARGV[10] the show's plan (JSON [[label, seats, "3,7"], ...], rows in
--       preference order; stored by the first join).
-- Reply: {expired, version, epoch, "JOINED" | "ALREADY", standing...}
--        (standing as common.lua's `standing`), or
--        {expired, version, epoch, "SEATS_AVAILABLE", free} when `quantity`
--        seats are free now (nobody joins: buy them instead).
-- A shopper already waiting, or holding a live offer, keeps where they stand.
local user, quantity, offer_id, ttl, plan_json =
  ARGV[6], tonumber(ARGV[7]), ARGV[8], ARGV[9], ARGV[10]
if not K.epoch then return redis.error_reply(NOSTATE) end
local limited = charge()
if limited then return limited end
local expired = sweep()
redis.call('HSETNX', K.waitlist, 'plan', plan_json)
redis.call('HSET', K.waitlist, 'ttl', ttl)
-- The sweep may have freed seats: they go to waiters first.
serve()
local st = standing(user)
local outcome
if st[1] == 'WAITING' or st[1] == 'OFFERED' then
  outcome = { 'ALREADY', st }
else
  local _, free = free_rows(cjson.decode(plan_json))
  if free >= quantity then
    outcome = { 'SEATS_AVAILABLE', free }
  else
    wait_add(user, quantity, offer_id)
    outcome = { 'JOINED', standing(user) }
  end
end
local v = announce()
local reply = { expired, v, K.epoch, outcome[1] }
if type(outcome[2]) == 'table' then
  for _, x in ipairs(outcome[2]) do reply[#reply + 1] = x end
else
  reply[#reply + 1] = outcome[2]
end
return reply
