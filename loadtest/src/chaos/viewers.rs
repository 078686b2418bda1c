//! Open seat maps: sockets that follow a show on one gateway slot for the
//! whole run (reconnecting when their node goes), apply what they are sent
//! and hold the contract to its word: deltas follow on from the previous
//! message's version within one epoch, never a gap, never another epoch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use super::ledger::Ledger;
use super::rig::Nodes;

#[derive(Default, Clone)]
pub struct View {
    /// Has a snapshot, and every delta since followed on from it.
    pub in_sync: bool,
    pub epoch: String,
    pub version: u64,
    pub seats: HashMap<String, String>,
    pub snapshots: u64,
    pub deltas: u64,
}

pub type SharedView = Arc<Mutex<View>>;

pub fn follow(nodes: Arc<Nodes>, slot: usize, show: String, ledger: Arc<Ledger>, stop: Arc<AtomicBool>) -> SharedView {
    let view = SharedView::default();
    let mine = view.clone();
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let Some(addr) = nodes.slot(slot) else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let url = format!("ws://{addr}/api/v1/shows/{show}/seats/ws");
            let Ok(Ok((mut ws, _))) =
                tokio::time::timeout(Duration::from_secs(3), tokio_tungstenite::connect_async(url)).await
            else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            while !stop.load(Ordering::Relaxed) {
                let next = tokio::time::timeout(Duration::from_millis(500), ws.next()).await;
                let text = match next {
                    Err(_) => continue,
                    Ok(Some(Ok(Message::Text(t)))) => t,
                    Ok(Some(Ok(_))) => continue,
                    Ok(None) | Ok(Some(Err(_))) => break,
                };
                let v: Value = serde_json::from_str(&text).unwrap_or_default();
                let applied = apply(&mut mine.lock().unwrap(), &v);
                if let Err(broken) = applied {
                    ledger.violation(format!("seat socket on slot {slot} ({show}): {broken}"));
                    break; // as a page would: reconnect for a fresh snapshot
                }
            }
            mine.lock().unwrap().in_sync = false;
        }
    });
    view
}

/// Applies one message; Err names a broken promise (the view then ignores
/// deltas until the next snapshot).
pub fn apply(view: &mut View, v: &Value) -> Result<(), String> {
    let epoch = v["epoch"].as_str().unwrap_or_default();
    let version = v["version"].as_u64().unwrap_or_default();
    match v["type"].as_str() {
        Some("snapshot") => {
            view.seats = v["seats"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| Some((s["id"].as_str()?.to_owned(), s["status"].as_str()?.to_owned())))
                .collect();
            view.epoch = epoch.to_owned();
            view.version = version;
            view.in_sync = true;
            view.snapshots += 1;
            Ok(())
        }
        Some("delta") if view.in_sync => {
            let from = v["fromVersion"].as_u64().unwrap_or(version);
            if epoch != view.epoch || from != view.version + 1 {
                let broken = format!("delta {epoch}:{from}..{version} after {}:{}", view.epoch, view.version);
                view.in_sync = false;
                return Err(broken);
            }
            for c in v["changes"].as_array().into_iter().flatten() {
                if let (Some(seat), Some(status)) = (c["seatId"].as_str(), c["status"].as_str()) {
                    view.seats.insert(seat.to_owned(), status.to_owned());
                }
            }
            view.version = version;
            view.deltas += 1;
            Ok(())
        }
        // Out of step already (reported once): waits for the snapshot.
        Some("delta") => Ok(()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn snapshot() -> View {
        let mut view = View::default();
        let snap = json!({"type": "snapshot", "epoch": "e1", "version": 4,
            "seats": [{"id": "A1", "status": "AVAILABLE"}, {"id": "A2", "status": "AVAILABLE"}]});
        apply(&mut view, &snap).unwrap();
        view
    }

    #[test]
    fn deltas_that_follow_on_are_applied() {
        let mut view = snapshot();
        let d = json!({"type": "delta", "epoch": "e1", "fromVersion": 5, "version": 7,
            "changes": [{"seatId": "A2", "status": "HELD"}]});
        apply(&mut view, &d).unwrap();
        assert_eq!(view.version, 7);
        assert_eq!(view.seats["A2"], "HELD");
        assert_eq!(view.seats["A1"], "AVAILABLE");
    }

    #[test]
    fn a_gap_or_another_epoch_is_a_broken_promise() {
        let mut view = snapshot();
        let gap = json!({"type": "delta", "epoch": "e1", "fromVersion": 6, "version": 6, "changes": []});
        assert!(apply(&mut view, &gap).unwrap_err().contains("e1:6..6 after e1:4"));
        let mut view = snapshot();
        let other = json!({"type": "delta", "epoch": "e2", "fromVersion": 5, "version": 5, "changes": []});
        assert!(apply(&mut view, &other).is_err());
        // A new snapshot starts the count again.
        let snap = json!({"type": "snapshot", "epoch": "e2", "version": 1, "seats": []});
        apply(&mut view, &snap).unwrap();
        let next = json!({"type": "delta", "epoch": "e2", "fromVersion": 2, "version": 2, "changes": []});
        apply(&mut view, &next).unwrap();
    }
}
