//! The Node.js peer (`loadtest/peers/ws-broadcaster.js`): its packages are
//! installed by npm into a temporary folder once per run (nothing is
//! vendored), and each peer process runs on loopback like a showgate server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The peer's folder in the repository.
fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers")
}

/// Installs `ws` and `ioredis` (per `peers/package.json`) into a temporary
/// folder; answers the `node_modules` to run with.
pub async fn install() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("sg-load-peer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::copy(peers_dir().join("package.json"), dir.join("package.json")).map_err(|e| e.to_string())?;
    let out = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
        .arg(&dir)
        .output()
        .await
        .map_err(|e| format!("npm: {e} (the Node.js peer needs node and npm)"))?;
    if !out.status.success() {
        return Err(format!("npm install failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(dir.join("node_modules"))
}

pub struct Peer {
    pub addr: SocketAddr,
    child: Child,
}

impl Peer {
    /// Starts one broadcaster process following `channel` on `redis_url`.
    pub async fn start(modules: &Path, redis_url: &str, channel: &str) -> Result<Peer, String> {
        let mut child = Command::new("node")
            .arg(peers_dir().join("ws-broadcaster.js"))
            .env("NODE_PATH", modules)
            .env("REDIS_URL", redis_url)
            .env("CHANNEL", channel)
            .env("PORT", "0")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("node: {e}"))?;
        let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(p) = line.strip_prefix("LISTENING ") {
                    return p.trim().parse::<u16>().ok();
                }
            }
            None
        })
        .await
        .map_err(|_| "the Node.js peer did not listen within 30 s".to_owned())?
        .ok_or("the Node.js peer exited before listening")?;
        Ok(Peer {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
        })
    }

    pub fn rss(&self) -> u64 {
        crate::server::rss_of(self.child.id().unwrap_or_default())
    }
}
