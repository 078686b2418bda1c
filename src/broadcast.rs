//! A tokio broadcast receiver as a stream: the shape in which every engine
//! hands out its events (seat deltas, waiting-room events, pub/sub payloads).

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

/// Skips over a lag (consumers see the gap in their version or sequence
/// numbers and re-read) and ends when the sender is gone.
pub fn lossy_stream<T: Clone + Send + 'static>(rx: Receiver<T>) -> BoxStream<'static, T> {
    futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(item) => return Some((item, rx)),
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    })
    .boxed()
}
