//! What booking asks the live seat map: which seats of a show are available
//! now. A conflict (the common answer in a sale) names them, and reading
//! them from this node's replica of the show costs the shared Redis nothing,
//! where listing them in the hold script cost O(show) per conflict. `live`
//! answers it (the application wires it in).

use async_trait::async_trait;

use crate::domain::catalog::Show;
use crate::error::{Result, SeatList};

#[async_trait]
pub trait SeatBoard: Send + Sync {
    /// Every sellable seat of the show nobody holds or booked, as of at
    /// least the last version this node saw, in the layout's order.
    async fn available(&self, show: &Show) -> Result<SeatList>;

    /// Which of `seats` are held or booked, read the same way: what a
    /// request naming an UNAVAILABLE seat conflicts with, at no cost to
    /// the shared engine.
    async fn taken_of(&self, show: &Show, seats: &[String]) -> Result<Vec<String>>;
}
