//! The waiting room as the rest of the service sees it: booking's admission
//! gate and the catalog's "is this show gated".

use async_trait::async_trait;

use super::rooms::Rooms;
use crate::booking::gate::AdmissionGate;
use crate::catalog::Gates;
use crate::domain::ShowId;
use crate::error::{Error, Result};

#[async_trait]
impl AdmissionGate for Rooms {
    /// Holds on a gated show need the caller's admission token for it.
    fn check(&self, show: &ShowId, user: &str, admission: Option<&str>) -> Result<()> {
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
        self.tokens.check_admission(token, user, show.as_str())
    }

    async fn order_confirmed(&self, show: &str, user: &str) {
        if let Err(e) = self.engine.end_active(show, user).await {
            tracing::warn!(%show, %user, error = %e, "could not end the shopper's admission");
        }
    }
}

impl Gates for Rooms {
    fn gated(&self, show: &str) -> bool {
        Rooms::gated(self, show).is_some()
    }
}
