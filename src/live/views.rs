//! The seat stream's JSON, built once per version and shared by every
//! socket. The snapshot and the REST seat map come from one function; the
//! REST map adds each seat's row and number.

use std::fmt::Write;

use crate::domain::catalog::Layout;
use crate::domain::seats::{SeatChange, SeatStatus};

use super::feed::Replica;

/// The seats of the map, in the layout's order, as a JSON array.
fn seats(layout: &Layout, replica: &Replica, rows: bool) -> String {
    let mut out = String::with_capacity(layout.len() * if rows { 56 } else { 32 });
    out.push('[');
    for (i, seat) in layout.seats.iter().enumerate() {
        let id = seat.to_string();
        let status = if layout.is_unavailable(&id) {
            SeatStatus::Unavailable
        } else {
            replica.taken.get(&id).copied().unwrap_or(SeatStatus::Available)
        };
        if i > 0 {
            out.push(',');
        }
        // Seat ids and rows are `[A-Z]{1,3}[0-9]{1,3}`: nothing to escape.
        if rows {
            let _ = write!(
                out,
                r#"{{"id":"{id}","row":"{}","number":{},"status":"{}"}}"#,
                seat.row,
                seat.number,
                status.as_str()
            );
        } else {
            let _ = write!(out, r#"{{"id":"{id}","status":"{}"}}"#, status.as_str());
        }
    }
    out.push(']');
    out
}

fn quoted(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

pub fn snapshot(show: &str, layout: &Layout, replica: &Replica) -> String {
    format!(
        r#"{{"type":"snapshot","showId":{},"epoch":{},"version":{},"seats":{}}}"#,
        quoted(show),
        quoted(&replica.epoch),
        replica.version,
        seats(layout, replica, false)
    )
}

/// The document of `GET /shows/{id}/seatmap` (which `rest_map` writes
/// by hand, once per version: a test holds the two together).
#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeatMapView {
    pub show_id: String,
    /// Changes whenever the show's seat state is rebuilt (docs/seat-stream.md).
    pub epoch: String,
    /// The show's seat-change counter within the epoch.
    pub version: u64,
    /// Every seat, in the screen's order.
    pub seats: Vec<SeatView>,
}

#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeatView {
    #[schema(example = "A1")]
    pub id: String,
    #[schema(example = "A")]
    pub row: String,
    pub number: u16,
    pub status: SeatStatus,
}

/// `GET /shows/{id}/seatmap`, as of the replica.
pub fn rest_map(show: &str, layout: &Layout, replica: &Replica) -> String {
    format!(
        r#"{{"showId":{},"epoch":{},"version":{},"seats":{}}}"#,
        quoted(show),
        quoted(&replica.epoch),
        replica.version,
        seats(layout, replica, true)
    )
}

/// A delta covering `from..=to`: the last status of each seat changed.
pub fn delta(epoch: &str, from: u64, to: u64, changes: &[SeatChange]) -> String {
    let mut list = String::with_capacity(changes.len() * 40);
    list.push('[');
    for (i, c) in changes.iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        let _ = write!(list, r#"{{"seatId":"{}","status":"{}"}}"#, c.seat_id, c.status.as_str());
    }
    list.push(']');
    format!(
        r#"{{"type":"delta","epoch":{},"fromVersion":{from},"version":{to},"changes":{list}}}"#,
        quoted(epoch)
    )
}

/// The seat map's ETag: one per version of one epoch.
pub fn etag(replica: &Replica) -> String {
    format!("\"{}-{}\"", replica.epoch, replica.version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::{Catalog, demo};
    use std::collections::HashMap;

    #[test]
    fn the_snapshot_and_the_rest_map_agree_and_parse() {
        let catalog = Catalog::new(demo(chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap())).unwrap();
        let show = &catalog.shows()[0];
        let layout = catalog.layout(&show.screen_id).unwrap();
        let replica = Replica {
            epoch: "e1".into(),
            version: 7,
            taken: HashMap::from([("B2".to_string(), SeatStatus::Held)]),
        };
        let snap: serde_json::Value = serde_json::from_str(&snapshot(&show.id, &layout, &replica)).unwrap();
        let rest: serde_json::Value = serde_json::from_str(&rest_map(&show.id, &layout, &replica)).unwrap();
        assert_eq!(
            (snap["type"].as_str(), snap["epoch"].as_str(), snap["version"].as_u64()),
            (Some("snapshot"), Some("e1"), Some(7))
        );
        let (a, b) = (snap["seats"].as_array().unwrap(), rest["seats"].as_array().unwrap());
        assert_eq!(a.len(), layout.len());
        for (s, r) in a.iter().zip(b) {
            assert_eq!((&s["id"], &s["status"]), (&r["id"], &r["status"]));
        }
        let typed: SeatMapView = serde_json::from_value(rest.clone()).expect("the document's shape");
        assert_eq!(
            (typed.epoch.as_str(), typed.version, typed.seats.len()),
            ("e1", 7, layout.len())
        );
        let b2 = b.iter().find(|s| s["id"] == "B2").unwrap();
        assert_eq!(
            (b2["row"].as_str(), b2["number"].as_u64(), b2["status"].as_str()),
            (Some("B"), Some(2), Some("HELD"))
        );
        let d: serde_json::Value = serde_json::from_str(&delta(
            "e1",
            3,
            5,
            &[SeatChange {
                seat_id: "A1".into(),
                status: SeatStatus::Booked,
            }],
        ))
        .unwrap();
        assert_eq!(
            d,
            serde_json::json!({"type": "delta", "epoch": "e1", "fromVersion": 3, "version": 5,
                "changes": [{"seatId": "A1", "status": "BOOKED"}]})
        );
    }
}
