//! A showgate server under test: started as its own process on loopback, so
//! its memory is measured alone (VmRSS from /proc).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct Server {
    pub addr: SocketAddr,
    child: Child,
}

impl Server {
    /// Starts `bin serve` with `envs` on 127.0.0.1:0 and waits until it listens.
    pub async fn start(bin: &PathBuf, envs: &[(String, String)]) -> Result<Server, String> {
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .env("BIND", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "warn,showgate=info")
            .env("RATE_LIMIT_IP_PER_SEC", "0")
            // The swarm's sockets come from a few loopback addresses each.
            .env("WS_MAX_PER_IP", "0")
            .env("RATE_LIMIT_USER_PER_SEC", "0")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut lines = BufReader::new(child.stderr.take().ok_or("no stderr")?).lines();
        let addr = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && v["fields"]["message"] == "showgate listening"
                {
                    return v["fields"]["addr"].as_str().and_then(|a| a.parse().ok());
                }
            }
            None
        })
        .await
        .map_err(|_| "the server did not listen within 60 s".to_owned())?
        .ok_or("the server exited before listening")?;
        // SG_LOAD_SERVER_LOGS=<dir>: each server's log kept as <dir>/<pid>.log.
        let keep = std::env::var_os("SG_LOAD_SERVER_LOGS")
            .map(|dir| PathBuf::from(dir).join(format!("{}.log", child.id().unwrap_or_default())));
        tokio::spawn(async move {
            use std::io::Write;
            let mut file = keep.and_then(|p| std::fs::File::create(p).ok());
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(f) = file.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
            }
        });
        Ok(Server { addr, child })
    }

    /// SIGTERM: the node drains (readiness 503, sockets told 4500, in-flight
    /// requests finish) and exits; answers once it has.
    pub async fn terminate(mut self) -> Result<std::process::ExitStatus, String> {
        let pid = self.pid().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().await;
        if !sent.is_ok_and(|s| s.success()) {
            return Err(format!("could not SIGTERM {pid}"));
        }
        self.child.wait().await.map_err(|e| e.to_string())
    }

    /// SIGKILL: gone at once, nothing handed back.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or_default()
    }

    /// Resident set size in bytes.
    pub fn rss(&self) -> u64 {
        rss_of(self.pid())
    }
}

pub fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}
