-- seats_hold_best.lua: best available. Picks `quantity` adjacent free seats
-- in one row by the rule of src/domain/best.rs (its specification: rows in
-- the order given, the first row with a block wins; in a row, a block that
-- strands no single free seat first, then the one nearest the middle, then
-- the leftmost) and locks them for the user, in one step: two concurrent
-- picks never get the same seat and never conflict.
-- KEYS: the common fourteen (fifteen when charged) (common.lua).
-- ARGV: common five, then ARGV[6] userId, ARGV[7] holdId, ARGV[8] ttl (ms),
--       ARGV[9] quantity, then per row in preference order: label, seats,
--       unavailable seat numbers ("3,7" or "").
-- Reply: {expired, version, epoch, 1, hold record JSON (as stored, after the
--        script's changes: its "s" are the seats picked)} on success;
--        {expired, version, epoch, 2, largestBlock} when no row has room.
-- The user's previous active hold counts as free and is released in the
-- same step. Run twice with the same holdId, it answers the first run's
-- seats and changes nothing.
local user, hold_id, ttl, quantity = ARGV[6], ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])
if not K.epoch then return redis.error_reply(NOSTATE) end
local limited = charge()
if limited then return limited end
local expired = sweep()
-- What the sweep freed goes to waiters before this request takes a seat.
serve_caller = user
serve()
local again = hold_get(hold_id)
if again and again.u == user then
  return { expired, announce(), K.epoch, 1, hold_raw(hold_id) }
end
local prev = redis.call('HGET', K.users, user)
local mine = prev and ('H:' .. prev) or nil

local largest = 0
for i = 10, #ARGV, 3 do
  local row, n = ARGV[i], tonumber(ARGV[i + 1])
  local off = {}
  for num in string.gmatch(ARGV[i + 2], '%d+') do off[tonumber(num)] = true end
  local ids = {}
  for k = 1, n do ids[k] = row .. k end
  local owners = redis.call('HMGET', K.seats, unpack(ids))
  local free, run = {}, 0
  for k = 1, n do
    free[k] = not off[k] and (not owners[k] or owners[k] == mine)
    if free[k] then run = run + 1; if run > largest then largest = run end else run = 0 end
  end
  local start = best_in_row(free, n, quantity)
  if start then
    local seats = {}
    for k = start, start + quantity - 1 do seats[#seats + 1] = ids[k] end
    local v = take_seats(user, hold_id, ttl, seats, prev)
    return { expired, v, K.epoch, 1, hold_raw(hold_id) }
  end
end
return { expired, announce(), K.epoch, 2, largest }
