//! A TCP proxy in front of a real service, for faults the service itself
//! cannot show: cut every connection (and refuse new ones), silence the
//! open ones without closing them (a blackhole), point new connections
//! elsewhere (a failover), or hold replies back (a script whose answer
//! comes after the client gave up).

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
                    let up = async {
                        let _ = tokio::io::copy(&mut ci, &mut so).await;
                    };
                    let down = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = match si.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            let delay = st.reply_delay_ms.load(Ordering::Acquire);
                            if delay > 0 {
                                tokio::time::sleep(Duration::from_millis(delay)).await;
                            }
                            if co.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    tokio::select! {
                        _ = conn.cancelled() => {}
                        // Silenced: nothing more either way, and no FIN
                        // either: the sockets stay open until cut.
                        _ = silence.cancelled() => conn.cancelled().await,
                        _ = async { tokio::join!(up, down) } => {}
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

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.state.conns.lock().unwrap().cancel();
    }
}
