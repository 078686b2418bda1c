//! The record: in process and Postgres.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use showgate::booking::store::{Applied, Cursor, Order, Records, StoredResponse};
use showgate::domain::order::{OrderEvent, OrderStatus, Refusal, SeatEffect};
use uuid::Uuid;

use super::SHOW;
use super::common::{self, seats};

fn order(user: &str, hold: &str, seat_ids: &[&str], created: chrono::DateTime<Utc>) -> Order {
    let created = showgate::domain::order::micros(created);
    Order {
        id: Uuid::new_v4(),
        user_id: user.into(),
        show_id: SHOW.into(),
        hold_id: hold.into(),
        seat_ids: seats(seat_ids),
        amount_minor: 25_000 * seat_ids.len() as i64,
        currency: "INR".into(),
        status: OrderStatus::PaymentPending,
        created_at: created,
        expires_at: created + TimeDelta::minutes(10),
        updated_at: created,
        ticket_code: None,
        payment_reference: None,
        failure_reason: None,
        lock_synced: true,
    }
}

async fn one_order_per_hold(records: Arc<dyn Records>) {
    let o = order("alice", "h1", &["A1"], Utc::now());
    let (stored, created) = records.create_order(&o).await.unwrap();
    assert!(created);
    assert_eq!(stored, o);
    let mut again = order("alice", "h1", &["A1"], Utc::now());
    again.id = Uuid::new_v4();
    let (stored, created) = records.create_order(&again).await.unwrap();
    assert!(!created);
    assert_eq!(stored.id, o.id);
    assert_eq!(records.order_by_hold("h1").await.unwrap().unwrap().id, o.id);
}

async fn payment_books_seats_and_a_second_sale_is_refused(records: Arc<dyn Records>) {
    let now = Utc::now();
    let a = order("alice", "h1", &["A1", "A2"], now);
    let b = order("bob", "h2", &["A2", "A3"], now);
    records.create_order(&a).await.unwrap();
    records.create_order(&b).await.unwrap();
    let Applied::Changed {
        order: confirmed,
        effect,
    } = records
        .apply(a.id, OrderEvent::PaymentSucceeded, now, Some("pay-1"))
        .await
        .unwrap()
    else {
        panic!("confirm must change the order")
    };
    assert_eq!((confirmed.status, effect), (OrderStatus::Confirmed, SeatEffect::Book));
    assert!(confirmed.ticket_code.as_deref().is_some_and(|c| c.starts_with("SG-")));
    assert!(!confirmed.lock_synced);
    match records
        .apply(b.id, OrderEvent::PaymentSucceeded, now, None)
        .await
        .unwrap()
    {
        Applied::SeatsTaken { order, conflicts } => {
            assert_eq!(conflicts, seats(&["A2"]));
            assert_eq!(order.status, OrderStatus::Failed);
        }
        other => panic!("a second sale of A2 must be refused, got {other:?}"),
    }
    let mut booked = records.booked_seats(SHOW).await.unwrap();
    booked.sort();
    assert_eq!(booked, vec![("A1".into(), a.id), ("A2".into(), a.id)]);
    // Repeating the confirmation answers the same order.
    assert!(matches!(
        records.apply(a.id, OrderEvent::PaymentSucceeded, now, None).await.unwrap(),
        Applied::Unchanged(o) if o.ticket_code == confirmed.ticket_code
    ));
}

async fn cancelling_a_confirmed_order_unbooks_its_seats(records: Arc<dyn Records>) {
    let now = Utc::now();
    let a = order("alice", "h1", &["A1"], now);
    records.create_order(&a).await.unwrap();
    records
        .apply(a.id, OrderEvent::PaymentSucceeded, now, None)
        .await
        .unwrap();
    let Applied::Changed { order, effect } = records.apply(a.id, OrderEvent::Cancel, now, None).await.unwrap() else {
        panic!("cancel must change the order")
    };
    assert_eq!((order.status, effect), (OrderStatus::Cancelled, SeatEffect::Free));
    assert!(records.booked_seats(SHOW).await.unwrap().is_empty());
    assert!(matches!(
        records
            .apply(a.id, OrderEvent::PaymentSucceeded, now, None)
            .await
            .unwrap(),
        Applied::Refused(_, Refusal::InvalidState)
    ));
}

async fn pending_orders_expire_and_refuse_payment(records: Arc<dyn Records>) {
    let then = Utc::now() - TimeDelta::minutes(11);
    let a = order("alice", "h1", &["A1"], then);
    records.create_order(&a).await.unwrap();
    let now = Utc::now();
    assert_eq!(records.due_orders(now, 10).await.unwrap(), vec![a.id]);
    assert!(matches!(
        records
            .apply(a.id, OrderEvent::PaymentSucceeded, now, None)
            .await
            .unwrap(),
        Applied::Refused(_, Refusal::Expired)
    ));
    let Applied::Changed { order, .. } = records.apply(a.id, OrderEvent::Expire, now, None).await.unwrap() else {
        panic!("expiry must change the order")
    };
    assert_eq!(order.status, OrderStatus::Expired);
    assert!(records.due_orders(now, 10).await.unwrap().is_empty());
    let unsynced = records.unsynced_orders(now + TimeDelta::seconds(1), 10).await.unwrap();
    assert_eq!(unsynced.iter().map(|o| o.id).collect::<Vec<_>>(), vec![a.id]);
    records.mark_lock_synced(a.id, order.updated_at).await.unwrap();
    assert!(
        records
            .unsynced_orders(now + TimeDelta::seconds(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn history_pages_newest_first(records: Arc<dyn Records>) {
    let base = Utc::now();
    let mut ids = Vec::new();
    for i in 0..5 {
        let o = order("alice", &format!("h{i}"), &["A1"], base + TimeDelta::seconds(i));
        records.create_order(&o).await.unwrap();
        ids.push(o.id);
    }
    records.create_order(&order("bob", "hb", &["B1"], base)).await.unwrap();
    let page1 = records.orders_of_user("alice", 2, None).await.unwrap();
    assert_eq!(page1.iter().map(|o| o.id).collect::<Vec<_>>(), vec![ids[4], ids[3]]);
    let last = page1.last().unwrap();
    let cursor = Cursor {
        created_at: last.created_at,
        id: last.id,
    };
    let page2 = records.orders_of_user("alice", 10, Some(cursor)).await.unwrap();
    assert_eq!(
        page2.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![ids[2], ids[1], ids[0]]
    );
}

async fn the_first_idempotent_response_wins(records: Arc<dyn Records>) {
    let first = StoredResponse {
        request_hash: "h1".into(),
        status: 201,
        body: serde_json::json!({"n": 1}),
    };
    let second = StoredResponse {
        request_hash: "h2".into(),
        status: 200,
        body: serde_json::json!({"n": 2}),
    };
    assert_eq!(
        records.store_idempotent_response("alice", "k", &first).await.unwrap(),
        first
    );
    assert_eq!(
        records.store_idempotent_response("alice", "k", &second).await.unwrap(),
        first
    );
    assert_eq!(records.idempotent_response("alice", "k").await.unwrap(), Some(first));
    assert_eq!(records.idempotent_response("bob", "k").await.unwrap(), None);
}

struct FailingSink;

#[async_trait::async_trait]
impl showgate::booking::events::EventSink for FailingSink {
    async fn append(&self, _: &[showgate::booking::events::OutboxEvent]) -> showgate::error::Result<()> {
        Err(showgate::error::Error::Unavailable("the stream is down".into()))
    }
}

async fn outbox_events_are_relayed_once_in_order_and_kept_when_the_sink_fails(records: Arc<dyn Records>) {
    let now = Utc::now();
    let a = order("alice", "h1", &["A1"], now);
    records.create_order(&a).await.unwrap();
    records
        .apply(a.id, OrderEvent::PaymentSucceeded, now, None)
        .await
        .unwrap();
    assert!(records.relay_outbox(10, &FailingSink).await.is_err());
    let sink = showgate::booking::events::MemoryStream::default();
    assert_eq!(records.relay_outbox(1, &sink).await.unwrap(), 1);
    assert_eq!(records.relay_outbox(10, &sink).await.unwrap(), 1);
    assert_eq!(
        records.relay_outbox(10, &sink).await.unwrap(),
        0,
        "nothing is relayed twice"
    );
    let events = sink.events();
    let topics: Vec<&str> = events.iter().map(|e| e.topic.as_str()).collect();
    assert_eq!(topics, vec!["order.created", "booking.confirmed"]);
    assert!(events[0].id < events[1].id);
    assert_eq!(events[1].payload["orderId"], serde_json::json!(a.id));
    assert_eq!(events[1].payload["status"], "CONFIRMED");
}

/// A sink that takes its time (a stream a little far away) and keeps what
/// it was given, in the order appends finished.
#[derive(Default)]
struct SlowSink(std::sync::Mutex<Vec<showgate::booking::events::OutboxEvent>>);

#[async_trait::async_trait]
impl showgate::booking::events::EventSink for SlowSink {
    async fn append(&self, events: &[showgate::booking::events::OutboxEvent]) -> showgate::error::Result<()> {
        tokio::time::sleep(std::time::Duration::from_millis(3 + events[0].id as u64 % 5)).await;
        self.0.lock().unwrap().extend_from_slice(events);
        Ok(())
    }
}

/// Four nodes relay one Postgres outbox at once (each its own pool): every
/// event reaches the stream once, and each order's in the order they happened.
#[tokio::test]
async fn several_relays_keep_each_orders_events_in_order() {
    let database = common::fresh_database().await;
    let mut nodes: Vec<Arc<dyn Records>> = Vec::new();
    for _ in 0..4 {
        let pool = showgate::postgres::connect_and_migrate(&database).await.unwrap();
        nodes.push(Arc::new(showgate::booking::store::postgres::PgRecords::new(pool)));
    }
    let now = Utc::now();
    let mut ids = Vec::new();
    for i in 0..20 {
        let o = order(&format!("u{i}"), &format!("h{i}"), &[&format!("A{}", i + 1)], now);
        nodes[0].create_order(&o).await.unwrap();
        nodes[0]
            .apply(o.id, OrderEvent::PaymentSucceeded, now, None)
            .await
            .unwrap();
        ids.push(o.id);
    }
    let sink = Arc::new(SlowSink::default());
    let relays = nodes.iter().map(|records| {
        let (records, sink) = (records.clone(), sink.clone());
        tokio::spawn(async move {
            // Small batches, as fast as they go, until a pass finds nothing
            // three times running.
            let mut idle = 0;
            while idle < 3 {
                match records.relay_outbox(1, sink.as_ref()).await.unwrap() {
                    0 => {
                        idle += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                    _ => idle = 0,
                }
            }
        })
    });
    futures::future::join_all(relays).await;
    let events = sink.0.lock().unwrap().clone();
    assert_eq!(events.len(), 40, "every event once");
    for id in ids {
        let topics: Vec<&str> = events
            .iter()
            .filter(|e| e.payload["orderId"] == serde_json::json!(id))
            .map(|e| e.topic.as_str())
            .collect();
        assert_eq!(topics, vec!["order.created", "booking.confirmed"], "order {id}");
    }
}

macro_rules! record_cases {
    ($($case:ident),* $(,)?) => {
        mod memory_records {
            $( #[tokio::test] async fn $case() { super::$case(super::common::memory_records()).await } )*
        }
        mod postgres_records {
            $( #[tokio::test] async fn $case() { super::$case(super::common::pg_records().await).await } )*
        }
    };
}

record_cases!(
    one_order_per_hold,
    payment_books_seats_and_a_second_sale_is_refused,
    cancelling_a_confirmed_order_unbooks_its_seats,
    pending_orders_expire_and_refuse_payment,
    history_pages_newest_first,
    the_first_idempotent_response_wins,
    outbox_events_are_relayed_once_in_order_and_kept_when_the_sink_fails,
);

/// A row lock somebody holds and never lets go (a stuck session) costs an
/// order step at most the pool's lock timeout, then a 503: the expiry loop
/// and the reconciler go on with the next order instead of waiting forever.
#[tokio::test]
async fn a_stuck_row_lock_is_a_503_after_the_lock_timeout() {
    use showgate::booking::store::postgres::PgRecords;
    use showgate::postgres::{Timeouts, connect_and_migrate_with};
    use sqlx::Connection;

    let url = common::fresh_database().await;
    let timeouts = Timeouts {
        statement: std::time::Duration::from_secs(5),
        lock: std::time::Duration::from_millis(300),
    };
    let records = PgRecords::new(connect_and_migrate_with(&url, timeouts).await.unwrap());
    let now = Utc::now();
    let a = order("alice", "h1", &["A1"], now);
    records.create_order(&a).await.unwrap();
    // Another session locks the order's row and sits on it.
    let mut stuck = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut stuck).await.unwrap();
    sqlx::query("SELECT id FROM orders WHERE id = $1 FOR UPDATE")
        .bind(a.id)
        .execute(&mut stuck)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let paid = tokio::time::timeout(
        std::time::Duration::from_secs(4),
        records.apply(a.id, OrderEvent::PaymentSucceeded, now, Some("pay-1")),
    )
    .await
    .expect("the step gave up at the lock timeout instead of waiting for the lock");
    assert!(
        matches!(paid, Err(showgate::error::Error::Unavailable(_))),
        "a lock timeout is a 503: {paid:?}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Once the lock goes, the same step goes through.
    sqlx::query("ROLLBACK").execute(&mut stuck).await.unwrap();
    let paid = records
        .apply(a.id, OrderEvent::PaymentSucceeded, now, Some("pay-1"))
        .await
        .unwrap();
    assert!(matches!(paid, Applied::Changed { .. }), "{paid:?}");
}
