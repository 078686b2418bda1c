-- seats_book.lua: an order's payment succeeded; its seats are BOOKED for good.
-- Runs after the order store committed the sale, so it books the seats even if
-- the lock was lost meanwhile: the order store is the record, Redis follows it.
-- KEYS: the common fourteen. ARGV: common five, then ARGV[6] orderId, ARGV[7] holdId,
--       ARGV[8] the order state's stamp (updated_at, µs), ARGV[9..] seatIds.
-- Reply: {expired, version, epoch, applied (1|0)}: 0 when a newer (or this)
-- state of the order was applied already, and nothing changed.
local order_id, hold_id, stamp = ARGV[6], ARGV[7], tonumber(ARGV[8])
if not K.epoch then return redis.error_reply(NOSTATE) end
local expired = sweep()
if not fresh(order_id, stamp) then return { expired, announce(), K.epoch, 0 } end
local owner = 'B:' .. order_id
for i = 9, #ARGV do
  local seat = ARGV[i]
  local current = redis.call('HGET', K.seats, seat)
  if not current or string.sub(current, 1, 2) ~= 'B:' then change(seat, 'BOOKED') end
  redis.call('HSET', K.seats, seat, owner)
end
settled(hold_id)
return { expired, announce(), K.epoch, 1 }
