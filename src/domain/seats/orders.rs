//! An order's seats: a hold becomes an order's lock, and the record's
//! verdict (booked, or freed) is applied, fenced by the order state's stamp.

use super::{At, Effects, ExtendOutcome, HoldStatus, Op, OrderLock, Owner, SeatStatus, ShowSeats, status_name};

impl ShowSeats {
    /// Turns an active hold into an order's lock (`lua/seats_extend_for_order.lua`).
    pub fn extend_for_order(
        &mut self,
        at: At<'_>,
        user: &str,
        hold_id: &str,
        order_id: &str,
        order_ttl_ms: i64,
    ) -> (ExtendOutcome, Effects) {
        let mut op = Op::begin(self, at);
        op.give_back_if_lost(user, hold_id);
        let outcome = match op.state.record(hold_id) {
            None => ExtendOutcome::NotFound,
            Some(rec) if rec.user != user => ExtendOutcome::NotFound,
            Some(rec) if rec.order_id.is_some() => ExtendOutcome::Existing(OrderLock {
                order_id: rec.order_id.clone().unwrap_or_default(),
                created_ms: rec.order_created_ms.unwrap_or_default(),
                expires_ms: rec.order_expires_ms.unwrap_or_default(),
            }),
            Some(rec) if rec.status == HoldStatus::Expired => ExtendOutcome::Expired,
            Some(rec) if rec.status != HoldStatus::Held => ExtendOutcome::NotActive(status_name(rec.status)),
            Some(_) => ExtendOutcome::Attached(op.attach(user, hold_id, order_id, order_ttl_ms)),
        };
        let (_, fx) = op.finish();
        (outcome, fx)
    }

    /// Books an order's seats for good (`lua/seats_book.lua`), unless this
    /// or a newer state of the order was applied already (`false`).
    pub fn book(&mut self, at: At<'_>, order_id: &str, hold_id: &str, stamp: i64, seats: &[String]) -> (bool, Effects) {
        let mut op = Op::begin(self, at);
        if !op.fresh(order_id, stamp) {
            return (false, op.finish().1);
        }
        for seat in seats {
            let prev = op.state.owners.insert(seat.clone(), Owner::Booked(order_id.to_owned()));
            if !matches!(prev, Some(Owner::Booked(_))) {
                op.changes.set(seat, SeatStatus::Booked);
            }
        }
        op.settled(hold_id);
        (true, op.finish().1)
    }

    /// Frees the seats an order held or booked (`lua/seats_release_order.lua`),
    /// unless this or a newer state of the order was applied already (`false`).
    pub fn release_order(
        &mut self,
        at: At<'_>,
        order_id: &str,
        hold_id: &str,
        stamp: i64,
        seats: &[String],
    ) -> (bool, Effects) {
        let mut op = Op::begin(self, at);
        if !op.fresh(order_id, stamp) {
            return (false, op.finish().1);
        }
        let (held, booked) = (Owner::Order(order_id.to_owned()), Owner::Booked(order_id.to_owned()));
        for seat in seats {
            let owner = op.state.owners.get(seat);
            if owner == Some(&held) || owner == Some(&booked) {
                op.state.owners.remove(seat);
                op.changes.set(seat, SeatStatus::Available);
            }
        }
        op.settled(hold_id);
        (true, op.finish().1)
    }
}

impl Op<'_> {
    /// A hold that lost a seat (booked by an order whose lock had been
    /// lost) cannot become an order: it gives back what it still has.
    fn give_back_if_lost(&mut self, user: &str, hold_id: &str) {
        let owner = Owner::Hold(hold_id.to_owned());
        let lost = self.state.holds.get(hold_id).is_some_and(|rec| {
            rec.user == user
                && rec.order_id.is_none()
                && rec.status == HoldStatus::Held
                && rec.seats.iter().any(|s| self.state.owners.get(s) != Some(&owner))
        });
        if lost {
            self.hold_end(hold_id, HoldStatus::Released, self.now);
        }
    }

    /// Moves an active hold's seats to the new order's lock, kept until the
    /// order expires plus grace.
    fn attach(&mut self, user: &str, hold_id: &str, order_id: &str, order_ttl_ms: i64) -> OrderLock {
        let lock = OrderLock {
            order_id: order_id.to_owned(),
            created_ms: self.now,
            expires_ms: self.now + order_ttl_ms,
        };
        let Some(rec) = self.state.holds.get_mut(hold_id) else {
            return lock;
        };
        rec.order_id = Some(lock.order_id.clone());
        rec.order_created_ms = Some(lock.created_ms);
        rec.order_expires_ms = Some(lock.expires_ms);
        let (seats, offer) = (rec.seats.clone(), rec.offer);
        for seat in seats {
            self.state.owners.insert(seat, Owner::Order(order_id.to_owned()));
        }
        if self.state.users.get(user).map(String::as_str) == Some(hold_id) {
            self.state.users.remove(user);
        }
        self.state
            .deadlines
            .add(lock.expires_ms + self.times.order_grace_ms, hold_id);
        if offer {
            self.offer_taken();
        }
        lock
    }

    /// The record decided the order: its lock needs no deadline, and its
    /// hold record goes after the retention.
    fn settled(&mut self, hold_id: &str) {
        self.state.deadlines.remove(hold_id);
        if let Some(rec) = self.state.holds.remove(hold_id) {
            self.tomb(hold_id, rec);
        }
    }
}
