//! The application's state: each field is a substate a feature's routes ask
//! for by type (axum's `FromRef`), so no feature sees the whole. axum clones
//! the state for every request (and every middleware with state), so it is
//! one `Arc`: a clone is one counter, not one per part.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::extract::FromRef;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::booking::Booking;
use crate::booking::locks::recovering::Recovering;
use crate::booking::store::Records;
use crate::catalog::Gates;
use crate::config::Settings;
use crate::domain::catalog::Catalog;
use crate::http::extract::AuthState;
use crate::http::ratelimit::Limiter;
use crate::live::hub::SeatHub;
use crate::waitroom::rooms::Rooms;
use crate::ws::Sockets;

#[derive(Clone)]
pub struct AppState(Arc<Parts>);

impl AppState {
    pub fn new(parts: Parts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

/// Each part, as a substate the routes ask for by type.
macro_rules! substates {
    ($($field:ident: $ty:ty),* $(,)?) => {
        $(impl FromRef<AppState> for $ty {
            fn from_ref(state: &AppState) -> Self {
                state.0.$field.clone()
            }
        })*
    };
}

substates!(
    catalog: Arc<Catalog>,
    gates: Arc<dyn Gates>,
    booking: Arc<Booking>,
    rooms: Arc<Rooms>,
    seat_hub: Arc<SeatHub>,
    sockets: Sockets,
    auth: AuthState,
    per_ip: Arc<Limiter<IpAddr>>,
    health: Health,
    metrics: PrometheusHandle,
    settings: Arc<Settings>,
);

pub struct Parts {
    pub catalog: Arc<Catalog>,
    pub gates: Arc<dyn Gates>,
    pub booking: Arc<Booking>,
    pub rooms: Arc<Rooms>,
    pub seat_hub: Arc<SeatHub>,
    pub sockets: Sockets,
    pub auth: AuthState,
    pub per_ip: Arc<Limiter<IpAddr>>,
    /// What readiness checks.
    pub health: Health,
    pub metrics: PrometheusHandle,
    pub settings: Arc<Settings>,
}

/// The backing services, for `/readyz`.
#[derive(Clone)]
pub struct Health {
    pub locks: Arc<Recovering>,
    pub records: Arc<dyn Records>,
    /// Not ready until the waiting rooms are known.
    pub rooms: Arc<Rooms>,
    /// Set at SIGTERM: not ready from then on, so traffic moves elsewhere.
    pub draining: Arc<AtomicBool>,
    /// Its pub/sub connection: not ready while a lost one is replaced.
    pub redis: Option<Arc<crate::redis::RedisHandle>>,
}
