//! Metric names and the Prometheus recorder. Names live here so dashboards
//! and code agree.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const SEAT_LOCK_ATTEMPTS: &str = "seat_lock_attempts_total";
pub const SEAT_LOCK_DURATION: &str = "seat_lock_duration_seconds";
pub const HOLDS_EXPIRED: &str = "holds_expired_total";
pub const ORDERS: &str = "orders_total";
pub const WAITROOM_QUEUE_LENGTH: &str = "waitroom_queue_length";
pub const WAITROOM_ACTIVE: &str = "waitroom_active";
pub const WAITROOM_ADMITTED: &str = "waitroom_admitted_total";
pub const WAITROOM_FUNNEL: &str = "waitroom_funnel";
pub const WAITROOM_SEATS_LEFT: &str = "waitroom_seats_left";
pub const WAITROOM_SOLD_OUT_AT: &str = "waitroom_sold_out_at_seconds";
pub const WAITROOM_OUTLOOK_SHARE: &str = "waitroom_outlook_share";
pub const WAITROOM_ADMITTED_HOLDS: &str = "waitroom_admitted_holds_total";
pub const WS_CONNECTIONS: &str = "ws_connections";
pub const SEAT_FEEDS: &str = "seat_feeds";
pub const SEAT_FEED_LAG: &str = "seat_feed_lag_seconds";
pub const SEAT_FEED_RESYNCS: &str = "seat_feed_resyncs_total";
pub const SEAT_STREAM_FRAMES: &str = "seat_stream_frames_total";
pub const SEAT_STREAM_SNAPSHOTS: &str = "seat_stream_snapshots_total";
pub const SEAT_STATE_REBUILDS: &str = "seat_state_rebuilds_total";
pub const DB_POOL_IN_USE: &str = "db_pool_connections_in_use";
pub const DB_POOL_MAX: &str = "db_pool_connections_max";
pub const REDIS_MEMORY_USED: &str = "redis_memory_used_bytes";
pub const REDIS_MEMORY_MAX: &str = "redis_memory_max_bytes";
pub const HTTP_REQUESTS: &str = "http_requests_total";
pub const HTTP_DURATION: &str = "http_request_duration_seconds";
pub const WAITLIST_JOINS: &str = "waitlist_joins_total";
pub const WAITLIST_LENGTH: &str = "waitlist_length";
pub const WAITLIST_OFFERS: &str = "waitlist_offers_total";
pub const HOLD_TOMBSTONES: &str = "hold_tombstones";
pub const SWEEP_OVERDUE: &str = "seat_sweep_overdue_seconds";
pub const SWEEP_SHOWS: &str = "seat_sweep_shows_total";
pub const TASK_PANICS: &str = "background_task_panics_total";
pub const PUBSUB_LOST: &str = "redis_pubsub_lost_total";
pub const PUBSUB_UP: &str = "redis_pubsub_up";

/// Latency buckets from 0.5 ms to 10 s: seat locks live in the low
/// milliseconds, a stalled dependency in seconds.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once (tests build many apps in one
/// process) and answers the handle that renders it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .expect("static bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics shows only this one");
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(
        SEAT_LOCK_ATTEMPTS,
        "Seat hold attempts by result (held, conflict, error)."
    );
    metrics::describe_histogram!(SEAT_LOCK_DURATION, "Time to run the atomic hold script.");
    metrics::describe_counter!(HOLDS_EXPIRED, "Holds that reached their TTL without an order.");
    metrics::describe_counter!(ORDERS, "Orders by the status they entered.");
    metrics::describe_gauge!(WS_CONNECTIONS, "Open WebSockets by kind.");
    metrics::describe_gauge!(
        SEAT_FEEDS,
        "Shows this node has a live seat feed (one subscription) for."
    );
    metrics::describe_histogram!(
        SEAT_FEED_LAG,
        "From a seat change's arrival at this node's feed to its batch going out to the sockets."
    );
    metrics::describe_counter!(
        SEAT_FEED_RESYNCS,
        "Seat feeds re-read from the engine (gap, new epoch)."
    );
    metrics::describe_counter!(
        SEAT_STREAM_FRAMES,
        "Delta frames written to seat sockets at once by the feed."
    );
    metrics::describe_counter!(
        SEAT_STREAM_SNAPSHOTS,
        "Snapshots sent to seat sockets that fell too far behind."
    );
    metrics::describe_counter!(
        SEAT_STATE_REBUILDS,
        "Shows whose seat state was rebuilt from Postgres, by reason (missing, went_back, seats_taken)."
    );
    metrics::describe_gauge!(DB_POOL_IN_USE, "Postgres connections of this node's pool in use.");
    metrics::describe_gauge!(DB_POOL_MAX, "The size limit of this node's Postgres pool.");
    metrics::describe_gauge!(
        REDIS_MEMORY_USED,
        "Redis used_memory of the server nearest its limit (read by one node a round, shared)."
    );
    metrics::describe_gauge!(
        REDIS_MEMORY_MAX,
        "Redis maxmemory of that server; 0 when it has no limit."
    );
    metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests by route and status.");
    metrics::describe_histogram!(HTTP_DURATION, "HTTP request latency by route.");
    // Registered at zero so they exist before the first event.
    metrics::counter!(HOLDS_EXPIRED).increment(0);
    for result in ["held", "conflict", "error"] {
        metrics::counter!(SEAT_LOCK_ATTEMPTS, "result" => result).increment(0);
    }
    for gauge in [WAITROOM_QUEUE_LENGTH, WAITROOM_ACTIVE] {
        metrics::describe_gauge!(gauge, "Waiting-room figures per show.");
    }
    metrics::describe_counter!(WAITROOM_ADMITTED, "Shoppers admitted per show.");
    metrics::describe_gauge!(
        WAITROOM_FUNNEL,
        "A gated sale's funnel per show and step (queued, admitted, held, ordered, paid, abandoned): shoppers in total, set by the node leading the show's admission (aggregate with max)."
    );
    metrics::describe_gauge!(WAITROOM_SEATS_LEFT, "Seats neither held nor booked, per gated show.");
    metrics::describe_gauge!(
        WAITROOM_SOLD_OUT_AT,
        "Projected sell-out of a gated show (unix seconds); 0 when the queue is not projected to sell it out."
    );
    metrics::describe_gauge!(
        WAITROOM_OUTLOOK_SHARE,
        "Share of a gated show's queue in each outlook band (LIKELY, POSSIBLE, UNLIKELY, SOLD_OUT)."
    );
    metrics::describe_counter!(
        WAITROOM_ADMITTED_HOLDS,
        "Hold attempts on gated shows by admitted shoppers, by result (held, conflict, not_enough_seats)."
    );
    metrics::describe_counter!(WAITLIST_JOINS, "Shoppers this node put on a waiting list.");
    metrics::describe_gauge!(
        WAITLIST_LENGTH,
        "Shoppers waiting for returned seats per show (read from the engine: the same on every node)."
    );
    metrics::describe_counter!(
        WAITLIST_OFFERS,
        "Waiting-list offers per show by outcome (made, taken, expired, declined), counted by the engine: the same on every node."
    );
    metrics::counter!(WAITLIST_JOINS).increment(0);
    metrics::describe_gauge!(
        HOLD_TOMBSTONES,
        "Ended holds' records kept per show (read by the sweeper; bounded by the per-user budget times twice the retention)."
    );
    metrics::describe_gauge!(
        SWEEP_OVERDUE,
        "How long the most overdue show has waited for the sweeper (expiry and tombstone collection) at the end of its last pass: the sweeper's backlog."
    );
    metrics::describe_counter!(SWEEP_SHOWS, "Shows the sweeper looked at, by why (due, changed, scan).");
    metrics::gauge!(SWEEP_OVERDUE).set(0.0);
    metrics::describe_counter!(
        PUBSUB_LOST,
        "Redis pub/sub connections found lost (closed, or silent past a ping) and replaced."
    );
    metrics::describe_gauge!(
        PUBSUB_UP,
        "1 while this node's Redis pub/sub connection answers, 0 while it is being re-established."
    );
    metrics::describe_counter!(
        TASK_PANICS,
        "Background tasks that panicked, by task; each is started again after a backoff."
    );
    for status in crate::domain::order::OrderStatus::ALL {
        metrics::counter!(ORDERS, "status" => status.as_str()).increment(0);
    }
    for kind in ["seats", "queue", "waitlist"] {
        metrics::gauge!(WS_CONNECTIONS, "kind" => kind).increment(0.0);
    }
    // A histogram handle registers the series (zero counts) without a sample.
    let _ = metrics::histogram!(SEAT_LOCK_DURATION);
}
