//! One waiting-list socket, written over `Sink`/`Stream` of tungstenite
//! messages so it runs the same on a real WebSocket and on channels in
//! tests. It reads the shopper's standing every `poll_every` and sends it
//! when it changed; once the offer is over (or the shopper is off the
//! list) it says so and closes.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures::{Sink, Stream, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

use super::views;
use crate::domain::seats::WaitStanding;
use crate::error::{Error, Result};
use crate::ws::session::{End, Heartbeat, close_with, deliver, shutting_down};
use crate::ws::{SocketTimes, close};

/// How long to wait before reading again when nothing has been read yet
/// to pace by (the engine failed before any standing was known).
const RETRY: Duration = Duration::from_secs(1);

/// How often a socket reads its shopper's standing: every second near the
/// front of the line and once an offer is out, less often further back (a
/// read is one small script, and ten thousand waiters polling every second
/// would be ten thousand of them a second). An offer lasts
/// `WAITLIST_OFFER_SECONDS` (120 s by default), so even the longest wait
/// between reads costs a waiter far back a few seconds of it at most.
pub fn poll_every(standing: &WaitStanding) -> Duration {
    match standing {
        // One more second per hundred places ahead, up to ten.
        WaitStanding::Waiting { position, .. } => Duration::from_secs((1 + position / 100).min(10)),
        _ => Duration::from_secs(1),
    }
}

/// Runs the socket until either side ends it, or the shopper's offer is
/// over (or they left the list). `first` is the standing read at the
/// handshake; `read` reads it again.
pub async fn run<S, R, F, Fut>(
    mut sink: S,
    mut stream: R,
    first: WaitStanding,
    read: F,
    times: SocketTimes,
    shutdown: CancellationToken,
) -> End
where
    S: Sink<Message> + Unpin,
    R: Stream<Item = std::result::Result<Message, WsError>> + Unpin,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<WaitStanding>>,
{
    let mut heartbeat = Heartbeat::start(times);
    let mut next_read = Instant::now() + poll_every(&first);
    let mut last: Option<WaitStanding> = None;
    let mut next = Some(first);
    loop {
        if let Some(standing) = next.take()
            && last.as_ref() != Some(&standing)
        {
            if let Err(end) = say(&mut sink, &standing, times).await {
                return end;
            }
            last = Some(standing);
        }
        let step = tokio::select! {
            _ = tokio::time::sleep_until(next_read) => {
                let (read, after) = poll(read(), last.as_ref()).await;
                next = read;
                next_read = Instant::now() + after;
                Ok(())
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

/// Sends a standing the shopper has not seen; when it is the end of their
/// offer (or of their place), it is the socket's last word.
async fn say<S>(sink: &mut S, standing: &WaitStanding, times: SocketTimes) -> std::result::Result<(), End>
where
    S: Sink<Message> + Unpin,
{
    let text = Bytes::from(views::socket_message(standing).to_string());
    deliver(sink, &text, times).await?;
    if matches!(standing, WaitStanding::Ended { .. } | WaitStanding::None) {
        return Err(close_with(sink, close::NORMAL, "the offer is over").await);
    }
    Ok(())
}

/// Reads the standing once: what to say (nothing when the engine failed:
/// a blip, tried again at the next read) and how long until the next read.
async fn poll<Fut>(read: Fut, last: Option<&WaitStanding>) -> (Option<WaitStanding>, Duration)
where
    Fut: Future<Output = Result<WaitStanding>>,
{
    let read = read.await;
    let after = read.as_ref().ok().or(last).map_or(RETRY, poll_every);
    let next = match read {
        Ok(standing) => Some(standing),
        // Off the list (it left elsewhere, or the list was lost).
        Err(Error::NotFound(_)) => Some(WaitStanding::None),
        Err(e) => {
            tracing::debug!(error = %e, "waitlist socket could not read its standing");
            None
        }
    };
    (next, after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    use futures::channel::mpsc::{self, UnboundedReceiver, UnboundedSender};
    use serde_json::{Value, json};
    use tokio::task::JoinHandle;

    use crate::domain::seats::OfferEnd;

    /// What one read of the standing answers.
    #[derive(Clone)]
    enum Read {
        Standing(WaitStanding),
        /// Not on the list (404).
        Gone,
        /// The engine failed.
        Blip,
    }

    /// When each read happened.
    type Reads = Arc<Mutex<Vec<Instant>>>;

    /// A `read` that answers `script` in turn (the last answer repeats),
    /// and when it was called.
    fn scripted(script: Vec<Read>) -> (impl Fn() -> std::future::Ready<Result<WaitStanding>>, Reads) {
        let script = Mutex::new(script);
        let reads = Arc::new(Mutex::new(Vec::new()));
        let at = reads.clone();
        let read = move || {
            at.lock().unwrap().push(Instant::now());
            let mut s = script.lock().unwrap();
            let next = if s.len() > 1 { s.remove(0) } else { s[0].clone() };
            std::future::ready(match next {
                Read::Standing(standing) => Ok(standing),
                Read::Gone => Err(Error::NotFound("not on the list".into())),
                Read::Blip => Err(Error::Internal("the engine blinked".into())),
            })
        };
        (read, reads)
    }

    /// The client's end of a session on channels.
    struct Client {
        sent: UnboundedReceiver<Message>,
        says: UnboundedSender<std::result::Result<Message, WsError>>,
        shutdown: CancellationToken,
        session: JoinHandle<End>,
        started: Instant,
    }

    fn start<F, Fut>(first: WaitStanding, read: F, times: SocketTimes) -> Client
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<WaitStanding>> + Send + 'static,
    {
        let (sink, sent) = mpsc::unbounded::<Message>();
        let (says, incoming) = mpsc::unbounded();
        let shutdown = CancellationToken::new();
        let started = Instant::now();
        let session = tokio::spawn(run(sink, incoming, first, read, times, shutdown.clone()));
        Client {
            sent,
            says,
            shutdown,
            session,
            started,
        }
    }

    impl Client {
        async fn next(&mut self) -> Message {
            self.sent.next().await.expect("the session wrote nothing more")
        }

        /// The next message, which must be text.
        async fn text(&mut self) -> Value {
            match self.next().await {
                Message::Text(t) => serde_json::from_str(&t).unwrap(),
                other => panic!("expected text, got {other:?}"),
            }
        }

        /// The next message, which must be a close frame: its code and reason.
        async fn close(&mut self) -> (u16, String) {
            match self.next().await {
                Message::Close(Some(f)) => (f.code.into(), f.reason.to_string()),
                other => panic!("expected a close frame, got {other:?}"),
            }
        }

        fn since_start(&self, reads: &Mutex<Vec<Instant>>) -> Vec<Duration> {
            reads.lock().unwrap().iter().map(|t| *t - self.started).collect()
        }
    }

    /// Long enough between pings that the heartbeat stays out of the way.
    fn quiet() -> SocketTimes {
        SocketTimes::pinging_every(Duration::from_secs(600))
    }

    fn waiting(position: u64, quantity: usize) -> WaitStanding {
        WaitStanding::Waiting { position, quantity }
    }

    fn offered() -> WaitStanding {
        WaitStanding::Offered {
            hold_id: "s.h".into(),
            seats: vec!["A1".into()],
            expires_ms: 0,
        }
    }

    fn ended(end: OfferEnd) -> WaitStanding {
        WaitStanding::Ended {
            hold_id: "s.h".into(),
            seats: vec!["A1".into()],
            end,
        }
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn waiters_far_back_are_read_less_often() {
        assert_eq!(poll_every(&waiting(1, 2)), SECOND);
        assert_eq!(poll_every(&waiting(99, 2)), SECOND);
        assert_eq!(poll_every(&waiting(250, 2)), 3 * SECOND);
        assert_eq!(poll_every(&waiting(50_000, 2)), 10 * SECOND);
        assert_eq!(poll_every(&offered()), SECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn a_socket_far_back_reads_its_standing_every_few_seconds() {
        let (read, reads) = scripted(vec![Read::Standing(waiting(500, 2))]);
        let mut c = start(waiting(500, 2), read, quiet());
        assert_eq!(
            c.text().await,
            json!({"type": "position", "state": "WAITING", "position": 500, "quantity": 2})
        );
        tokio::time::sleep(Duration::from_millis(12_500)).await;
        assert_eq!(
            c.since_start(&reads),
            [6 * SECOND, 12 * SECOND],
            "read at 6 s and 12 s, not every second"
        );
        // The same place read again is not sent again.
        assert!(c.sent.try_recv().is_err(), "nothing more was sent");
        c.session.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn the_socket_says_each_new_standing_once_and_closes_when_the_offer_is_over() {
        let (read, reads) = scripted(vec![
            Read::Standing(waiting(2, 1)),
            Read::Standing(waiting(1, 1)),
            Read::Standing(offered()),
            Read::Standing(offered()),
            Read::Standing(ended(OfferEnd::Accepted("o1".into()))),
        ]);
        let mut c = start(waiting(2, 1), read, quiet());
        let m = c.text().await;
        assert_eq!(
            (m["type"].as_str(), m["position"].as_u64()),
            (Some("position"), Some(2))
        );
        let m = c.text().await;
        assert_eq!(
            (m["type"].as_str(), m["position"].as_u64()),
            (Some("position"), Some(1))
        );
        assert_eq!(
            c.text().await,
            json!({"type": "offer", "state": "OFFERED", "holdId": "s.h", "seatIds": ["A1"],
                "expiresAt": "1970-01-01T00:00:00.000Z"})
        );
        assert_eq!(
            c.text().await,
            json!({"type": "ended", "state": "ACCEPTED", "holdId": "s.h", "orderId": "o1"})
        );
        assert_eq!(c.close().await, (close::NORMAL, "the offer is over".to_owned()));
        // Near the front and with an offer out, once a second.
        assert_eq!(c.since_start(&reads), [1, 2, 3, 4, 5].map(|s| s * SECOND));
        assert_eq!(c.session.await.unwrap(), End::Closed(close::NORMAL));
    }

    #[tokio::test(start_paused = true)]
    async fn a_shopper_no_longer_on_the_list_hears_left_and_the_socket_closes() {
        let (read, _) = scripted(vec![Read::Gone]);
        let mut c = start(waiting(3, 2), read, quiet());
        assert_eq!(c.text().await["state"], "WAITING");
        assert_eq!(c.text().await, json!({"type": "ended", "state": "LEFT"}));
        assert_eq!(c.close().await, (close::NORMAL, "the offer is over".to_owned()));
        assert_eq!(c.session.await.unwrap(), End::Closed(close::NORMAL));
        assert!(c.sent.next().await.is_none(), "nothing after the close");
    }

    #[tokio::test(start_paused = true)]
    async fn an_engine_blip_says_nothing_and_the_standing_is_read_again_at_the_same_pace() {
        let (read, reads) = scripted(vec![Read::Blip, Read::Standing(offered())]);
        let mut c = start(waiting(250, 2), read, quiet());
        assert_eq!(c.text().await["position"], 250);
        // The blip at 3 s sent nothing: the next message is the offer.
        assert_eq!(c.text().await["type"], "offer");
        assert_eq!(c.since_start(&reads), [3 * SECOND, 6 * SECOND]);
        c.session.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn an_offer_already_over_at_the_handshake_is_said_and_closed_at_once() {
        let (read, reads) = scripted(vec![Read::Standing(offered())]);
        let mut c = start(ended(OfferEnd::Expired), read, quiet());
        assert_eq!(
            c.text().await,
            json!({"type": "ended", "state": "EXPIRED", "holdId": "s.h", "orderId": null})
        );
        assert_eq!(c.close().await.0, close::NORMAL);
        assert_eq!(c.session.await.unwrap(), End::Closed(close::NORMAL));
        assert!(reads.lock().unwrap().is_empty(), "no read after the last word");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_closes_with_the_reconnect_code() {
        let (read, _) = scripted(vec![Read::Standing(offered())]);
        let mut c = start(offered(), read, quiet());
        assert_eq!(c.text().await["type"], "offer");
        c.shutdown.cancel();
        assert_eq!(
            c.close().await,
            (close::SHUTTING_DOWN, "server restarting, reconnect".to_owned())
        );
        assert_eq!(c.session.await.unwrap(), End::Closed(close::SHUTTING_DOWN));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_is_pinged_then_closed_and_a_client_close_ends_the_session() {
        let (read, _) = scripted(vec![Read::Standing(waiting(1, 1))]);
        let mut c = start(waiting(1, 1), read, SocketTimes::pinging_every(SECOND));
        c.text().await;
        let mut pings = 0;
        let code = loop {
            match c.next().await {
                Message::Ping(_) => pings += 1,
                Message::Close(Some(f)) => break u16::from(f.code),
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!((pings, code), (2, close::PEER_TIMEOUT));
        assert_eq!(c.session.await.unwrap(), End::Closed(close::PEER_TIMEOUT));

        let (read, _) = scripted(vec![Read::Standing(waiting(1, 1))]);
        let mut c = start(waiting(1, 1), read, SocketTimes::pinging_every(SECOND));
        c.text().await;
        // A peer that answers stays open past the dead-peer limit.
        for _ in 0..5 {
            assert!(matches!(c.next().await, Message::Ping(_)));
            c.says.unbounded_send(Ok(Message::Pong(Bytes::new()))).unwrap();
        }
        c.says.unbounded_send(Ok(Message::Close(None))).unwrap();
        assert_eq!(c.session.await.unwrap(), End::ClientClosed);
    }
}
