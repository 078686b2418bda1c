-- seats_release_order.lua: an order failed, expired or was cancelled; the seats
-- it held or booked become available. Seats owned by anyone else are left alone.
-- KEYS: the common six. ARGV: common five, then ARGV[6] orderId, ARGV[7] holdId,
--       ARGV[8..] seatIds.
-- Reply: {expired, version}
local order_id, hold_id = ARGV[6], ARGV[7]
local expired = sweep()
local held, booked = 'O:' .. order_id, 'B:' .. order_id
for i = 8, #ARGV do
  local seat = ARGV[i]
  local current = redis.call('HGET', K.seats, seat)
  if current == held or current == booked then
    redis.call('HDEL', K.seats, seat)
    change(seat, 'AVAILABLE')
  end
end
redis.call('ZREM', K.deadlines, hold_id)
redis.call('ZADD', K.gc, K.now + K.retention, hold_id)
return { expired, announce() }
