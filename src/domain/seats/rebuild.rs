//! A show's state rebuilt from the record (`lua/seats_rebuild.lua`): what
//! the record says wins over the locks, except a change newer than the
//! record's read.

use std::collections::HashMap;

use super::{
    At, Effects, HoldRecord, HoldStatus, Op, Owner, PendingLock, RecordState, SeatDelta, SeatStatus, ShowSeats,
};

/// The owner the record gives each seat, in the record's order.
#[derive(Default)]
struct Wanted {
    owner: HashMap<String, Owner>,
    order: Vec<String>,
}

impl Wanted {
    /// The first claim on a seat wins (booked seats are claimed first).
    fn claim(&mut self, seat: &str, owner: Owner) {
        if !self.owner.contains_key(seat) {
            self.owner.insert(seat.to_owned(), owner);
            self.order.push(seat.to_owned());
        }
    }
}

impl ShowSeats {
    /// (Re)builds the state from the record under a new epoch, unless the
    /// epoch is no longer `seen` (another node rebuilt first: `false`,
    /// nothing changed).
    pub fn rebuild(&mut self, at: At<'_>, seen: &str, epoch: &str, record: &RecordState) -> (bool, Effects) {
        if self.epoch.as_deref().unwrap_or("") != seen {
            return (false, Effects::default());
        }
        let mut op = Op::begin(self, at);
        let mut wanted = Wanted::default();
        op.claim_booked(record, &mut wanted);
        for pending in &record.pending {
            op.claim_pending(pending, &mut wanted);
        }
        op.give_seats(&wanted);
        op.drop_stale_bookings(record, &wanted);
        op.state.epoch = Some(epoch.to_owned());
        let changed = !op.changes.order.is_empty();
        let (version, mut fx) = op.finish();
        if !changed {
            // The new epoch is news even with no seat changed.
            fx.delta = Some(SeatDelta {
                show_id: at.show.to_owned(),
                epoch: epoch.to_owned(),
                version,
                changes: Vec::new(),
            });
        }
        (true, fx)
    }
}

impl Op<'_> {
    /// Booked seats, unless the locks follow a newer state of their order.
    fn claim_booked(&mut self, record: &RecordState, wanted: &mut Wanted) {
        for (seat, order, stamp) in &record.booked {
            if self.newer(order, *stamp) {
                continue;
            }
            wanted.claim(seat, Owner::Booked(order.clone()));
            self.restamp(order, *stamp);
        }
    }

    /// An order waiting for payment: its seats, and its hold record (as
    /// ordered) if the locks lost it, with its deadline.
    fn claim_pending(&mut self, p: &PendingLock, wanted: &mut Wanted) {
        if self.newer(&p.order_id, p.stamp) {
            return;
        }
        for seat in &p.seats {
            wanted.claim(seat, Owner::Order(p.order_id.clone()));
        }
        self.restamp(&p.order_id, p.stamp);
        let known = self
            .state
            .holds
            .get(&p.hold_id)
            .is_some_and(|r| r.order_id.as_deref() == Some(p.order_id.as_str()));
        if !known {
            self.state.holds.insert(p.hold_id.clone(), ordered_hold(p));
            if self.state.users.get(&p.user) == Some(&p.hold_id) {
                self.state.users.remove(&p.user);
            }
        }
        self.state
            .deadlines
            .add(p.expires_ms + self.times.order_grace_ms, &p.hold_id);
    }

    /// Gives each wanted seat its owner; an active hold on one of them
    /// is released (its other seats go back on sale).
    fn give_seats(&mut self, wanted: &Wanted) {
        for seat in &wanted.order {
            let owner = &wanted.owner[seat];
            let current = self.state.owners.get(seat).cloned();
            if current.as_ref() == Some(owner) {
                continue;
            }
            if let Some(Owner::Hold(id)) = &current {
                let active = self
                    .state
                    .holds
                    .get(id)
                    .is_some_and(|r| r.order_id.is_none() && r.status == HoldStatus::Held);
                if active {
                    self.hold_end(id, HoldStatus::Released, self.now);
                }
            }
            self.state.owners.insert(seat.clone(), owner.clone());
            self.changes.set(seat, owner.status());
        }
    }

    /// Whether the record has `order` ended in a state at least as new as
    /// the one the locks follow.
    fn ended_since(&self, order: &str, record: &RecordState) -> bool {
        let locked = self.state.stamps.get(order).copied().unwrap_or(i64::MIN);
        record.ended.iter().any(|(o, t)| o == order && *t >= locked)
    }

    /// Booked seats the record does not have, unless booked after it was
    /// read (and not ended since, by the record).
    fn drop_stale_bookings(&mut self, record: &RecordState, wanted: &Wanted) {
        let mut stale: Vec<String> = self
            .state
            .owners
            .iter()
            .filter(|(seat, o)| match o {
                Owner::Booked(order) => {
                    !wanted.owner.contains_key(*seat)
                        && (self.ended_since(order, record) || !self.newer(order, record.as_of))
                }
                _ => false,
            })
            .map(|(seat, _)| seat.clone())
            .collect();
        stale.sort();
        for seat in stale {
            self.state.owners.remove(&seat);
            self.changes.set(&seat, SeatStatus::Available);
        }
    }
}

/// The hold record of a pending order the locks had lost.
fn ordered_hold(p: &PendingLock) -> HoldRecord {
    HoldRecord {
        user: p.user.clone(),
        seats: p.seats.clone(),
        status: HoldStatus::Held,
        created_ms: p.created_ms,
        expires_ms: p.created_ms,
        order_id: Some(p.order_id.clone()),
        order_created_ms: Some(p.created_ms),
        order_expires_ms: Some(p.expires_ms),
        ended_ms: None,
        replaced: None,
        offer: false,
    }
}
