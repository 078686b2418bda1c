-- common.lua: the helpers every seat script shares. It is prepended to each
-- script when the script is loaded (src/redis/scripts.rs), so every script is
-- still one atomic EVALSHA.
--
-- Common KEYS (every key of a show shares one hash tag, so all of them live in
-- one Redis Cluster slot):
--   KEYS[1] seats      HASH  seatId -> owner: "H:<holdId>" held, "O:<orderId>" held
--                            for an order, "B:<orderId>" booked. Absent = available.
--   KEYS[2] holds      HASH  holdId -> JSON {u, s, st, c, e, o?, oe?, t?}
--   KEYS[3] users      HASH  userId -> holdId of the user's active, un-ordered hold
--   KEYS[4] deadlines  ZSET  holdId scored by the ms at which its seats must be freed;
--                            member "~gc" when a generation of tombstones is due
--   KEYS[5] ended      HASH  holdId -> tombstone JSON of holds that ended (released,
--                            expired, or their order settled), this generation;
--                            field "~" = the ms the generation began
--   KEYS[6] version    STRING the show's seat-change counter
--   KEYS[7] epoch      STRING which rebuild of the show's state this is; absent
--                            means the state is missing (Redis lost it, or the
--                            show was never loaded): every script but
--                            seats_rebuild then refuses with NOSTATE, so nothing
--                            is sold before the state is rebuilt from Postgres.
--   KEYS[8] stamps     HASH  orderId -> the order state (updated_at, µs) whose
--                            seat change was applied last; older ones are refused
--   KEYS[9] waiters    ZSET  the waiting list: userId scored by arrival
--   KEYS[10] waitlist  HASH  "w:<user>" -> "<quantity> <offer holdId>" of a
--                            waiter; "o:<user>" -> holdId of the user's last
--                            offer; "seq"; "plan" (the rows in preference order, JSON
--                            [[label, seats, "unavailable numbers"], ...]);
--                            "ttl" (an offer's, ms); "made", "taken",
--                            "expired", "declined" (what became of offers)
--   KEYS[11] waiters:q ZSET  the same waiters scored quantity * 2^32 + arrival:
--                            the first waiter of each quantity in O(log n)
--   KEYS[12] the show's waiting-room config HASH (exists: the show is gated)
--   KEYS[13] the waiting room's admitted ZSET user -> admission expiry (ms):
--                            on a gated show an offer is its waiter's
--                            admission, so the offered count in `active`
--   KEYS[14] ended:old HASH  the retired generation of tombstones; field "~" = the
--                            ms it was retired
--   KEYS[15] budget    STRING (only when the call is charged) the caller's budget
--                            of seat-changing calls on this show: its GCRA
--                            theoretical arrival time (µs), expiring with it
-- (Redis answers a missing key or field as false, not nil.)
-- Common ARGV:
--   ARGV[1] showId, ARGV[2] channel, ARGV[3] "PUBLISH" or "SPUBLISH",
--   ARGV[4] now (ms since the epoch), ARGV[5] tombstone retention (ms)
--   With KEYS[15], the last two ARGV are the budget's interval (µs) and
--   burst; they are taken off ARGV here, so a script's own ARGV keep their
--   places whether or not it is charged.
-- Every script replies {expiredHolds, version, epoch, ...}: how many holds its
-- in-line sweep expired, and the show's version and epoch after the script.

local K = {
  seats = KEYS[1], holds = KEYS[2], users = KEYS[3],
  deadlines = KEYS[4], ended = KEYS[5], version = KEYS[6],
  epoch_key = KEYS[7], stamps = KEYS[8], waiters = KEYS[9], waitlist = KEYS[10],
  by_quantity = KEYS[11], room_config = KEYS[12], admitted = KEYS[13],
  ended_old = KEYS[14], budget = KEYS[15],
  show = ARGV[1], channel = ARGV[2], pubcmd = ARGV[3],
  now = tonumber(ARGV[4]), retention = tonumber(ARGV[5]),
}
if K.budget then
  K.burst = tonumber(table.remove(ARGV))
  K.interval = tonumber(table.remove(ARGV))
end
K.epoch = redis.call('GET', K.epoch_key)
-- The error every script but seats_rebuild answers while the state is missing.
local NOSTATE = 'NOSTATE show ' .. K.show .. ' has no seat state; rebuild it from the record'

-- Seat changes of this script, in first-touched order, last status wins,
-- so a seat freed by expiry and taken again in the same script is one change.
local changes = { order = {}, status = {} }
local function change(seat, status)
  if changes.status[seat] == nil then changes.order[#changes.order + 1] = seat end
  changes.status[seat] = status
end

-- Charges the caller's budget of seat-changing calls (a GCRA across every
-- node: src/domain/seats/budget.rs is its specification). Answers the
-- error to return, or nil; called before the script changes anything, so a
-- refused call writes nothing.
local function charge()
  if not K.budget then return nil end
  local now = K.now * 1000
  local tat = math.max(tonumber(redis.call('GET', K.budget) or '0'), now)
  local early = tat - now - (K.burst - 1) * K.interval
  if early > 0 then
    return redis.error_reply('LIMITED ' .. math.ceil(early / 1000))
  end
  tat = tat + K.interval
  redis.call('SET', K.budget, string.format('%d', tat), 'PXAT', math.ceil(tat / 1000))
  return nil
end

-- A hold's record as stored (JSON), live or a tombstone; false if none.
local function hold_raw(id)
  return redis.call('HGET', K.holds, id) or redis.call('HGET', K.ended, id)
    or redis.call('HGET', K.ended_old, id)
end

local function hold_get(id)
  local raw = hold_raw(id)
  if raw then return cjson.decode(raw) end
  return nil
end

local function hold_put(id, rec)
  redis.call('HSET', K.holds, id, cjson.encode(rec))
end

-- Tombstones: an ended hold's record shrinks to what its reads still need
-- (user, seats, status, times, its order's) and moves to the current generation.
-- A generation is retired once it is `retention` old and a retired one is
-- dropped whole `retention` after that: every tombstone is kept at least
-- `retention` and about twice that at most, and dropping them costs one
-- UNLINK (freed off the main thread), not a command per record. The next
-- step of this is due at the deadline "~gc".
local GC = '~gc'

local function gc_schedule()
  local began = tonumber(redis.call('HGET', K.ended, '~'))
  local retired = tonumber(redis.call('HGET', K.ended_old, '~'))
  local next_at = nil
  if began then next_at = began + K.retention end
  if retired and (next_at == nil or retired + K.retention < next_at) then
    next_at = retired + K.retention
  end
  if next_at then
    redis.call('ZADD', K.deadlines, next_at, GC)
  else
    redis.call('ZREM', K.deadlines, GC)
  end
end

-- Retires the current generation and drops the retired one, as they come due.
local function gc()
  local began = tonumber(redis.call('HGET', K.ended, '~'))
  if began and K.now - began >= K.retention then
    -- The retired generation was retired before this one began: it is due too.
    redis.call('UNLINK', K.ended_old)
    redis.call('RENAME', K.ended, K.ended_old)
    redis.call('HSET', K.ended_old, '~', K.now)
  end
  local retired = tonumber(redis.call('HGET', K.ended_old, '~'))
  if retired and K.now - retired >= K.retention then
    redis.call('UNLINK', K.ended_old)
  end
  gc_schedule()
end

local function tomb_put(id, rec)
  rec.p, rec.w = nil, nil
  redis.call('HDEL', K.holds, id)
  redis.call('HSET', K.ended, id, cjson.encode(rec))
  if redis.call('HSETNX', K.ended, '~', K.now) == 1 then
    -- A new generation: it retires `retention` from now, unless the retired
    -- one is dropped sooner.
    redis.call('ZADD', K.deadlines, 'LT', K.now + K.retention, GC)
  end
end

-- The record decided an order: its lock needs no deadline, and the hold's
-- record becomes a tombstone.
local function settled(hold_id)
  redis.call('ZREM', K.deadlines, hold_id)
  local raw = redis.call('HGET', K.holds, hold_id)
  if raw then tomb_put(hold_id, cjson.decode(raw)) end
end

-- Ends an un-ordered hold: frees the seats it still owns, records the terminal
-- status and schedules the record's removal.
local function hold_end(id, rec, status, at)
  local owner = 'H:' .. id
  for _, seat in ipairs(rec.s) do
    if redis.call('HGET', K.seats, seat) == owner then
      redis.call('HDEL', K.seats, seat)
      change(seat, 'AVAILABLE')
    end
  end
  if rec.w then
    redis.call('HINCRBY', K.waitlist, status == 'EXPIRED' and 'expired' or 'declined', 1)
  end
  rec.st = status
  rec.t = at
  if redis.call('HGET', K.users, rec.u) == id then redis.call('HDEL', K.users, rec.u) end
  redis.call('ZREM', K.deadlines, id)
  tomb_put(id, rec)
end

-- With anyone on the waiting list, one script's sweep frees at most this many
-- seats (SWEEP_BUDGET_WITH_WAITERS in src/domain/seats/waitlist.rs); the
-- holds left due stay taken until the next script or the sweeper's next call.
-- Every seat a sweep frees must be offered in the same script (`serve`), and
-- offers are bounded per script, so a burst of expiries (the holds made in a
-- sale's opening second all run out together) is served in turns, never
-- published AVAILABLE for want of room in one script.
local SWEEP_BUDGET = 16
-- Whether this script's sweep stopped at the budget with holds still due.
local sweep_more = false

-- Frees what is due: holds past expiresAt, and seats of orders whose lock
-- outlived the order's expiry plus grace (the order store lost track of them).
-- Runs at the start of every script, so no script ever sees a stale lock.
local function sweep()
  local due = redis.call('ZRANGEBYSCORE', K.deadlines, '-inf', K.now)
  local budget = redis.call('ZCARD', K.waiters) > 0 and SWEEP_BUDGET or math.huge
  local expired, freed = 0, 0
  for _, id in ipairs(due) do
    if freed >= budget then
      sweep_more = true
      break
    end
    local rec = id ~= GC and hold_get(id)
    if id == GC then
      gc()
    elseif not rec then
      redis.call('ZREM', K.deadlines, id)
    elseif rec.o then
      local owner = 'O:' .. rec.o
      for _, seat in ipairs(rec.s) do
        if redis.call('HGET', K.seats, seat) == owner then
          redis.call('HDEL', K.seats, seat)
          change(seat, 'AVAILABLE')
          freed = freed + 1
        end
      end
      redis.call('ZREM', K.deadlines, id)
      tomb_put(id, rec)
    elseif rec.st == 'HELD' then
      freed = freed + #rec.s
      hold_end(id, rec, 'EXPIRED', rec.e)
      expired = expired + 1
    else
      redis.call('ZREM', K.deadlines, id)
    end
  end
  return expired
end

-- The best block of `quantity` in one row (free[k]: seat k can be sold), or
-- nil: the rule of src/domain/best.rs (a block that strands no single free
-- seat first, then the one nearest the middle, then the leftmost).
local function best_in_row(free, n, quantity)
  local best, best_strands, best_distance
  local k = 1
  while k <= n do
    if not free[k] then
      k = k + 1
    else
      local run_start = k
      while k <= n and free[k] do k = k + 1 end
      local run_end = k -- exclusive
      for s = run_start, run_end - quantity do
        local left, right = s - run_start, run_end - (s + quantity)
        local strands = (left == 1 or right == 1) and 1 or 0
        -- Twice the distance between the block's middle and the row's.
        local distance = math.abs(2 * s + quantity - n - 2)
        if best == nil or strands < best_strands or (strands == best_strands and distance < best_distance) then
          best, best_strands, best_distance = s, strands, distance
        end
      end
    end
  end
  return best
end

-- Locks `seats` (none of them another shopper's) for a new hold of `user`
-- and releases the user's previous hold `prev` (if any) in the same step.
local function lock_seats(user, hold_id, ttl, seats, prev, offer)
  local owner = 'H:' .. hold_id
  for _, seat in ipairs(seats) do
    if not redis.call('HGET', K.seats, seat) then change(seat, 'HELD') end
    redis.call('HSET', K.seats, seat, owner)
  end
  if prev then
    local rec = hold_get(prev)
    if rec then hold_end(prev, rec, 'RELEASED', K.now) end
  end
  local expires = K.now + ttl
  hold_put(hold_id, { u = user, s = seats, st = 'HELD', c = K.now, e = expires, p = prev or nil, w = offer or nil })
  redis.call('HSET', K.users, user, hold_id)
  redis.call('ZADD', K.deadlines, expires, hold_id)
end

-- The waiting list (src/domain/seats/waitlist.rs is its specification).

-- At most this many offers in one script (MAX_OFFERS_PER_STEP).
local MAX_OFFERS = 32

-- The show's rows by `plan`, each {ids, free, n}, and how many seats are free.
local function free_rows(plan)
  local rows, total = {}, 0
  for i, r in ipairs(plan) do
    local label, n = r[1], tonumber(r[2])
    local off = {}
    for num in string.gmatch(r[3], '%d+') do off[tonumber(num)] = true end
    local ids = {}
    for k = 1, n do ids[k] = label .. k end
    local owners = redis.call('HMGET', K.seats, unpack(ids))
    local free = {}
    for k = 1, n do
      free[k] = not off[k] and not owners[k]
      if free[k] then total = total + 1 end
    end
    rows[i] = { ids = ids, free = free, n = n }
  end
  return rows, total
end

-- The seats an offer of q gets: the best block, else the first free seats
-- in preference order (best::pick_offer). They are marked taken in `rows`.
local function pick_offer(rows, q)
  local picked = {}
  for _, r in ipairs(rows) do
    local s = best_in_row(r.free, r.n, q)
    if s then
      for k = s, s + q - 1 do picked[#picked + 1] = { r, k } end
      break
    end
  end
  if #picked == 0 then
    for _, r in ipairs(rows) do
      for k = 1, r.n do
        if r.free[k] and #picked < q then picked[#picked + 1] = { r, k } end
      end
    end
    if #picked < q then return nil end
  end
  local seats = {}
  for i, p in ipairs(picked) do
    p[1].free[p[2]] = false
    seats[i] = p[1].ids[p[2]]
  end
  return seats
end

-- A waiter's quantity and offer id.
local function waiter(user)
  local w = redis.call('HGET', K.waitlist, 'w:' .. user)
  if not w then return nil end
  local q, offer = string.match(w, '^(%d+) (.+)$')
  return tonumber(q), offer
end

-- A waiter's score in K.by_quantity: by quantity, then by arrival.
local BAND = 4294967296
local function wait_add(user, quantity, offer_id)
  local seq = redis.call('HINCRBY', K.waitlist, 'seq', 1)
  redis.call('ZADD', K.waiters, seq, user)
  redis.call('ZADD', K.by_quantity, quantity * BAND + seq, user)
  redis.call('HSET', K.waitlist, 'w:' .. user, quantity .. ' ' .. offer_id)
end

local function wait_remove(user)
  redis.call('ZREM', K.waiters, user)
  redis.call('ZREM', K.by_quantity, user)
  redis.call('HDEL', K.waitlist, 'w:' .. user)
end

-- The first waiter (in order of arrival) wanting at most `free` seats:
-- user, quantity, offer id. One lookup per quantity anyone waits for, so a
-- single seat coming back to a list of 50,000 pairs costs a few calls, not
-- a walk of the list.
-- `except` (the caller of a request for seats) is passed over.
local function first_fitting(free, except)
  local top = redis.call('ZRANGE', K.by_quantity, -1, -1, 'WITHSCORES')
  if #top == 0 then return nil end
  local most = math.floor(tonumber(top[2]) / BAND)
  local user, first
  for q = 1, math.min(free, most) do
    local hit = redis.call('ZRANGEBYSCORE', K.by_quantity, q * BAND, '(' .. ((q + 1) * BAND),
      'WITHSCORES', 'LIMIT', 0, 2)
    local at = (#hit > 0 and hit[1] == except) and 3 or 1
    if #hit >= at then
      local seq = tonumber(hit[at + 1]) - q * BAND
      if first == nil or seq < first then user, first = hit[at], seq end
    end
  end
  if not user then return nil end
  local q, offer = waiter(user)
  return user, q, offer
end

-- Whether this script freed a seat (its last status is AVAILABLE).
local function freed_any()
  for _, seat in ipairs(changes.order) do
    if changes.status[seat] == 'AVAILABLE' then return true end
  end
  return false
end

-- Set by seats_expire: serve even when this script freed nothing (seats a
-- capped step could not offer are served by the sweeper's next call).
local serve_always = false
-- Set by a request for seats (seats_hold, seats_hold_best): its caller is
-- never offered seats in it (their own request wins for them; the offer
-- goes to the next waiter).
local serve_caller = nil
-- Offers made by this script so far: the budget is checked before each.
local offers_made = 0

-- Offers freed seats to waiters: the first waiter whose quantity the free
-- seats can serve gets an ordinary hold of them with the offer's TTL, and
-- leaves the list; repeated while anyone can be served. Runs before the
-- delta is made, so an offered seat's change is HELD, never AVAILABLE; a
-- request for seats also runs it right after its sweep, before it takes any.
local function serve()
  if not (serve_always or freed_any()) or redis.call('ZCARD', K.waiters) == 0 then return end
  local raw = redis.call('HGET', K.waitlist, 'plan')
  if not raw then return end
  local plan = cjson.decode(raw)
  local ttl = tonumber(redis.call('HGET', K.waitlist, 'ttl'))
  local gated = nil
  local rows, total = free_rows(plan)
  while offers_made < MAX_OFFERS do
    if total == 0 then return end
    local user, q, offer = first_fitting(total, serve_caller)
    if not user then return end
    wait_remove(user)
    local seats = pick_offer(rows, q)
    local prev = redis.call('HGET', K.users, user)
    lock_seats(user, offer, ttl, seats, prev, true)
    if gated == nil then gated = redis.call('EXISTS', K.room_config) == 1 end
    if gated then
      -- The offer is the waiter's admission: counted once in the room's
      -- active shoppers (GT: an admission that lasts longer stays).
      redis.call('ZADD', K.admitted, 'GT', K.now + ttl, user)
    end
    redis.call('HSET', K.waitlist, 'o:' .. user, offer)
    redis.call('HINCRBY', K.waitlist, 'made', 1)
    offers_made = offers_made + 1
    if prev then
      -- The waiter's own hold was released: its seats are free again.
      rows, total = free_rows(plan)
    else
      total = total - q
    end
  end
end

-- Where `user` stands on the waiting list at K.now (a read):
-- {"WAITING", position, quantity} | {"OFFERED", holdId, expiresAt, {seats}}
-- | {"ENDED", holdId, "ACCEPTED"|"EXPIRED"|"RELEASED", orderId or "", {seats}}
-- | {"NONE"}
local function standing(user)
  local rank = redis.call('ZRANK', K.waiters, user)
  if rank then
    local q = waiter(user)
    return { 'WAITING', rank + 1, q or 0 }
  end
  local id = redis.call('HGET', K.waitlist, 'o:' .. user)
  if not id then return { 'NONE' } end
  local rec = hold_get(id)
  if not rec then return { 'NONE' } end
  if rec.o then return { 'ENDED', id, 'ACCEPTED', rec.o, rec.s } end
  if rec.st == 'HELD' and K.now < rec.e then return { 'OFFERED', id, rec.e, rec.s } end
  local how = rec.st == 'RELEASED' and 'RELEASED' or 'EXPIRED'
  return { 'ENDED', id, how, '', rec.s }
end

-- Ends the script's changes: freed seats go to the waiting list first, then
-- the version is bumped once and one delta is published for every change; a
-- script that changed nothing leaves the version alone.
local function announce()
  serve()
  if #changes.order == 0 then
    return tonumber(redis.call('GET', K.version) or '0')
  end
  local v = redis.call('INCR', K.version)
  local list = {}
  for i, seat in ipairs(changes.order) do
    list[i] = { seatId = seat, status = changes.status[seat] }
  end
  redis.call(K.pubcmd, K.channel,
    cjson.encode({ showId = K.show, epoch = K.epoch, version = v, changes = list }))
  return v
end

-- Whether a seat change for this order state is newer than the last one
-- applied (and records it): a late or repeated message changes nothing.
local function fresh(order_id, stamp)
  local last = redis.call('HGET', K.stamps, order_id)
  if last and tonumber(last) >= stamp then return false end
  redis.call('HSET', K.stamps, order_id, stamp)
  return true
end

-- A new hold (lock_seats) and the end of the script: seats_hold and
-- seats_hold_best end the same way.
local function take_seats(user, hold_id, ttl, seats, prev)
  lock_seats(user, hold_id, ttl, seats, prev, false)
  return announce()
end
