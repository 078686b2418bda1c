//! The waiting room as the rest of the service sees it: booking's admission
//! gate and the catalog's "is this show gated".

use async_trait::async_trait;

use super::engine::{Settled, Step};
use super::rooms::Rooms;
use crate::booking::gate::{AdmissionGate, Progress};
use crate::catalog::Gates;
use crate::domain::ShowId;
use crate::error::{Error, Result};

#[async_trait]
impl AdmissionGate for Rooms {
    /// Holds on a gated show need the caller's admission token for it, and
    /// the caller's admission must still be active: a token outlives
    /// neither a confirmed order, nor leaving, nor the admission's end.
    async fn check(&self, show: &ShowId, user: &str, admission: Option<&str>) -> Result<()> {
        if !self.loaded() {
            // Not knowing which shows are gated must not open them all.
            return Err(Error::Unavailable("the waiting rooms are not loaded yet".into()));
        }
        if self.gated(show.as_str()).is_none() {
            return Ok(());
        }
        let token = admission.ok_or_else(|| {
            Error::AdmissionRequired("this show has a waiting room: join it and send X-Admission-Token".into())
        })?;
        self.tokens.check_admission(token, user, show.as_str())?;
        match self.engine.active_until(show.as_str(), user).await? {
            Some(until) if until > self.clock.now_ms() => Ok(()),
            _ => Err(Error::AdmissionRequired(
                "your admission has ended (used by a confirmed order, left, or expired): join the waiting room again"
                    .into(),
            )),
        }
    }

    fn gated(&self, show: &str) -> bool {
        Rooms::gated(self, show).is_some()
    }

    /// Funnel counts are the sale's record, not the shopper's answer: a
    /// failure to count is logged, never the shopper's error.
    async fn progressed(&self, show: &str, user: &str, step: Progress) {
        let Some(room) = Rooms::gated(self, show) else { return };
        let done = match step {
            Progress::Held { seats } => self.engine.progressed(show, user, Step::Held { seats }).await,
            Progress::Ordered => self.engine.progressed(show, user, Step::Ordered).await,
            Progress::Paid { seats } => {
                let ttl_ms = room.config.admission_ttl_seconds as i64 * 1000;
                let now = self.clock.now_ms();
                self.engine
                    .end_active(show, user, Settled::Bought { seats }, now, ttl_ms)
                    .await
            }
        };
        if let Err(e) = done {
            tracing::warn!(%show, %user, ?step, error = %e, "could not count the shopper's step");
        }
    }
}

impl Gates for Rooms {
    fn gated(&self, show: &str) -> bool {
        Rooms::gated(self, show).is_some()
    }
}

#[cfg(test)]
mod tests {
    use crate::waitroom::fixtures::NothingSold;
    use std::sync::Arc;
    use std::time::Duration;

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::auth::Tokens;
    use crate::clock::Clock;
    use crate::domain::catalog::{Catalog, demo};
    use crate::waitroom::engine::WaitingRooms;
    use crate::waitroom::memory::MemoryWaitingRooms;
    use crate::waitroom::rooms::Rooms;

    #[tokio::test]
    async fn until_the_rooms_are_known_no_show_is_open_to_holds() {
        let catalog = Arc::new(Catalog::new(demo(chrono::Utc::now().date_naive())).unwrap());
        let show = ShowId::parse(&catalog.shows()[0].id).unwrap();
        let engine: Arc<dyn WaitingRooms> = Arc::new(MemoryWaitingRooms::new(Arc::new(NothingSold), Clock::system()));
        let rooms = Rooms::new(
            engine,
            None,
            catalog,
            Arc::new(Tokens::new("secret")),
            Duration::from_secs(60),
            Clock::system(),
            CancellationToken::new(),
        );
        let refused = rooms.check(&show, "alice", None).await;
        assert!(matches!(refused, Err(Error::Unavailable(_))), "{refused:?}");
        rooms.refresh().await.unwrap();
        assert!(
            rooms.check(&show, "alice", None).await.is_ok(),
            "an ungated show, once known, is open"
        );
    }
}
