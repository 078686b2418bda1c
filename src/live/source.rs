//! What the seat stream asks of the seat engine, defined on live's side so
//! live depends on nothing of booking's: the application wires booking's
//! engine (with its recovery) in.

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::domain::seats::{SeatDelta, SeatSnapshot};
use crate::error::Result;

#[async_trait]
pub trait SeatSource: Send + Sync + 'static {
    /// Every taken seat of the show as of one version, read now.
    async fn snapshot(&self, show: &str) -> Result<SeatSnapshot>;

    /// The show's epoch and version now, one light read (no script): what a
    /// feed compares its replica with while nothing changes. `None` when the
    /// show has no state (a snapshot rebuilds it).
    async fn position(&self, show: &str) -> Result<Option<(String, u64)>>;

    /// The show answered a version below one this node's feed applied, in
    /// the same epoch: Redis went back (a failover to a replica that
    /// lagged). Rebuilds it from the record.
    async fn went_back(&self, show: &str) -> Result<()>;

    /// The show's deltas from now on, in version order; a stream that ends
    /// means the subscription was lost and must be taken again.
    async fn subscribe(&self, show: &str) -> Result<BoxStream<'static, SeatDelta>>;

    /// Drops this node's subscription to the show.
    async fn unsubscribe(&self, show: &str) -> Result<()>;

    /// The epoch and the highest version this node has seen of the show
    /// (its own writes included): a reader waits for its replica to reach it.
    fn seen(&self, show: &str) -> Option<(String, u64)>;
}
