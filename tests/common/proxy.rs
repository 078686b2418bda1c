//! A TCP proxy in front of a real service, for faults the service itself
//! cannot show: cut every connection (and refuse new ones), silence the
//! open ones without closing them (a blackhole), point new connections
//! elsewhere (a failover), hold replies back (a script whose answer
//! comes after the client gave up), or hold everything back for a while
//! (a server stopped with SIGSTOP: connections open, nothing answered).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

struct State {
    target: Mutex<String>,
    up: AtomicBool,
    /// Cancelled to drop every open connection; replaced on restore.
    conns: Mutex<CancellationToken>,
    /// Cancelled to silence every open connection (kept open, nothing
    /// forwarded: a host gone behind a VIP); replaced so new ones pass.
    silence: Mutex<CancellationToken>,
    reply_delay_ms: AtomicU64,
    /// While true nothing is forwarded either way (bytes wait, as in a
    /// stopped server's socket buffers); new connections are accepted.
    paused: tokio::sync::watch::Sender<bool>,
}

pub struct Proxy {
    pub addr: SocketAddr,
    state: Arc<State>,
    stop: CancellationToken,
}

impl Proxy {
    pub async fn to(target: impl Into<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            target: Mutex::new(target.into()),
            up: AtomicBool::new(true),
            conns: Mutex::new(CancellationToken::new()),
            silence: Mutex::new(CancellationToken::new()),
            reply_delay_ms: AtomicU64::new(0),
            paused: tokio::sync::watch::Sender::new(false),
        });
        let stop = CancellationToken::new();
        let (st, token) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (inbound, _) = tokio::select! {
                    _ = token.cancelled() => return,
                    accepted = listener.accept() => match accepted { Ok(a) => a, Err(_) => return },
                };
                if !st.up.load(Ordering::Acquire) {
                    drop(inbound); // refused: the client sees the connection close at once
                    continue;
                }
                let target = st.target.lock().unwrap().clone();
                let conn = st.conns.lock().unwrap().clone();
                let silence = st.silence.lock().unwrap().clone();
                let st = st.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut ci, mut co) = inbound.into_split();
                    let (mut si, mut so) = outbound.into_split();
                    let up = pump(&mut ci, &mut so, &st, false);
                    let down = pump(&mut si, &mut co, &st, true);
                    tokio::select! {
                        _ = conn.cancelled() => {}
                        // Silenced: nothing more either way, and no FIN
                        // either: the sockets stay open until cut.
                        _ = silence.cancelled() => conn.cancelled().await,
                        // Either side gone (a killed server, a closed
                        // client): the other side sees the close at once.
                        _ = up => {}
                        _ = down => {}
                    }
                });
            }
        });
        Self { addr, state, stop }
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.state.up.store(false, Ordering::Release);
        self.state.conns.lock().unwrap().cancel();
    }

    /// Stops forwarding on every open connection without closing it (no
    /// FIN, no RST: a partition or a host gone behind a VIP); new
    /// connections pass.
    pub fn blackhole(&self) {
        let mut silence = self.state.silence.lock().unwrap();
        silence.cancel();
        *silence = CancellationToken::new();
    }

    /// Forwards nothing either way until `resume` (a SIGSTOPped server:
    /// connections open and accepted, nothing answered).
    pub fn pause(&self) {
        self.state.paused.send_replace(true);
    }

    pub fn resume(&self) {
        self.state.paused.send_replace(false);
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        *self.state.conns.lock().unwrap() = CancellationToken::new();
        self.state.up.store(true, Ordering::Release);
    }

    /// New connections go to `target`; open ones stay where they are.
    pub fn retarget(&self, target: impl Into<String>) {
        *self.state.target.lock().unwrap() = target.into();
    }

    /// Holds every reply back this long (zero: none).
    pub fn delay_replies(&self, delay: Duration) {
        self.state
            .reply_delay_ms
            .store(delay.as_millis() as u64, Ordering::Release);
    }
}

/// Copies one direction until either end closes; replies wait out the
/// delay, and everything waits while the proxy is paused.
async fn pump(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    st: &State,
    replies: bool,
) {
    let mut paused = st.paused.subscribe();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let delay = st.reply_delay_ms.load(Ordering::Acquire);
        if replies && delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if paused.wait_for(|p| !*p).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.state.conns.lock().unwrap().cancel();
    }
}
