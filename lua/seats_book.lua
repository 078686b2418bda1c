-- seats_book.lua: an order's payment succeeded; its seats are BOOKED for good.
-- Runs after the order store committed the sale, so it books the seats even if
-- the lock was lost meanwhile: the order store is the record, Redis follows it.
-- KEYS: the common six. ARGV: common five, then ARGV[6] orderId, ARGV[7] holdId,
--       ARGV[8..] seatIds.
-- Reply: {expired, version}
local order_id, hold_id = ARGV[6], ARGV[7]
local expired = sweep()
local owner = 'B:' .. order_id
for i = 8, #ARGV do
  local seat = ARGV[i]
  local current = redis.call('HGET', K.seats, seat)
  if not current or string.sub(current, 1, 2) ~= 'B:' then change(seat, 'BOOKED') end
  redis.call('HSET', K.seats, seat, owner)
end
redis.call('ZREM', K.deadlines, hold_id)
return { expired, announce() }
