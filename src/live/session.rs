//! One seat-map socket, written over `Sink`/`Stream` of tungstenite
//! messages so it runs the same on a real WebSocket and on channels in tests.
//!
//! The socket is sent the feed's snapshot, then every delta in version
//! order. Its queue is the feed's bounded broadcast channel: if the socket
//! falls behind it (a slow reader), it is sent a fresh snapshot and carries
//! on from there: never an unbounded buffer, never a gap.

use futures::{Sink, Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

use super::hub::{Frame as FeedFrame, Joined};
use crate::ws::session::{End, Heartbeat, close_with, deliver, shutting_down};
use crate::ws::{SocketTimes, close};

/// Runs the socket until either side ends it.
pub async fn run<S, R>(
    mut sink: S,
    mut stream: R,
    joined: Joined,
    times: SocketTimes,
    shutdown: CancellationToken,
) -> End
where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, WsError>> + Unpin,
{
    let Joined {
        viewer,
        mut rx,
        mut version,
        snapshot,
    } = joined;
    if let Err(end) = deliver(&mut sink, &snapshot, times).await {
        return end;
    }
    drop(snapshot);
    let mut heartbeat = Heartbeat::start(times);
    loop {
        let step = tokio::select! {
            frame = rx.recv() => {
                let json = match frame {
                    Ok(FeedFrame::Delta { version: v, json }) if v == version + 1 => {
                        version = v;
                        json
                    }
                    Ok(FeedFrame::Delta { version: v, .. }) if v <= version => continue,
                    Ok(FeedFrame::Snapshot { version: v, json }) => {
                        version = v;
                        json
                    }
                    // Behind its queue (or, which one in-order feed never
                    // produces, a gap): resync with a fresh snapshot.
                    Ok(FeedFrame::Delta { .. }) | Err(RecvError::Lagged(_)) => {
                        let (v, json) = viewer.feed().snapshot().await;
                        version = v;
                        json
                    }
                    Err(RecvError::Closed) => return close_with(&mut sink, close::FEED_LOST, "feed lost, reconnect").await,
                };
                deliver(&mut sink, &json, times).await
            }
            incoming = stream.next() => heartbeat.heard(&mut sink, incoming).await,
            _ = heartbeat.due() => heartbeat.ping(&mut sink).await,
            _ = shutdown.cancelled() => return shutting_down(&mut sink).await,
        };
        if let Err(end) = step {
            return end;
        }
    }
}
