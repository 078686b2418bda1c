//! The admission gate: what booking asks before it holds seats, and tells
//! when a sale is done. Booking defines it; the waiting room implements it,
//! so booking knows nothing of queues.

use async_trait::async_trait;

use crate::domain::ShowId;
use crate::error::Result;

/// A step of the sale a shopper took, told to the gate: the waiting room
/// counts its funnel and learns how many seats an admitted shopper buys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Seats held (a hold made; a shopper's later hold counts again).
    Held {
        seats: u64,
    },
    Ordered,
    /// The order was confirmed: the shopper's admission is used up.
    Paid {
        seats: u64,
    },
}

#[async_trait]
pub trait AdmissionGate: Send + Sync + 'static {
    /// Whether `user` may hold seats of `show` now, given the admission
    /// token they sent (if any). An ungated show lets everyone through; a
    /// refusal is 403 `ADMISSION_REQUIRED`.
    async fn check(&self, show: &ShowId, user: &str, admission: Option<&str>) -> Result<()>;

    /// Whether the show has a waiting room now: its seats, returned ones
    /// included, go only to shoppers it admitted.
    fn gated(&self, show: &str) -> bool;

    /// The shopper took a step on a show (only gated shows count it).
    async fn progressed(&self, show: &str, user: &str, step: Progress);
}

/// No waiting room anywhere: every shopper may hold.
pub struct OpenGate;

#[async_trait]
impl AdmissionGate for OpenGate {
    async fn check(&self, _show: &ShowId, _user: &str, _admission: Option<&str>) -> Result<()> {
        Ok(())
    }

    fn gated(&self, _show: &str) -> bool {
        false
    }

    async fn progressed(&self, _show: &str, _user: &str, _step: Progress) {}
}
