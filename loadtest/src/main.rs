//! `sg-load`: load tests and benchmarks for showgate. Every run targets
//! loopback only, is bounded in users and time, and stops by itself.

mod server;
mod swarm;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "sg-load", about = "showgate load tests and benchmarks (loopback only)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Server memory per idle seat-map socket: RSS before and after opening N sockets.
    WsIdle {
        /// Sockets to open (one process holds at most ~19,900).
        #[arg(long, default_value_t = 10_000)]
        sockets: usize,
        /// The showgate binary to start (build it with `cargo build --release`).
        #[arg(long, default_value = "target/release/showgate")]
        server_bin: PathBuf,
        /// Redis for the server; unset runs it on the memory engine.
        #[arg(long, env = "REDIS_URL")]
        redis_url: Option<String>,
        /// Screen of the watched show: `pvr-forum-1` (140 seats, ~5 KB snapshot)
        /// or `inox-imax` (1,200 seats, ~40 KB snapshot).
        #[arg(long, default_value = "pvr-forum-1")]
        screen: String,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::WsIdle {
            sockets,
            server_bin,
            redis_url,
            screen,
        } => ws_idle(sockets, server_bin, redis_url, &screen).await,
    };
    if let Err(e) = result {
        eprintln!("sg-load: {e}");
        std::process::exit(1);
    }
}

async fn ws_idle(sockets: usize, bin: PathBuf, redis_url: Option<String>, screen: &str) -> Result<(), String> {
    if sockets > 19_000 {
        return Err("one process holds at most ~19,900 sockets; run several processes for more".into());
    }
    let mut envs = vec![("WS_PING_SECONDS".to_owned(), "600".to_owned())];
    if let Some(url) = &redis_url {
        envs.push(("REDIS_URL".into(), url.clone()));
        envs.push(("REDIS_KEY_PREFIX".into(), format!("sgload:{}:", std::process::id())));
    }
    let server = server::Server::start(&bin, &envs).await?;
    let http = format!("http://{}", server.addr);
    let show = show_on(&http, screen).await?;
    let path = format!("/api/v1/shows/{show}/seats/ws");
    let tally = Arc::new(swarm::Tally::default());
    let noop: swarm::OnMessage = Arc::new(|_, _, _| {});
    let hold = Duration::from_secs(120);

    // Warm up: the feed, the allocator and the runtime's first sockets.
    swarm::open(server.addr, &path, 200, tally.clone(), noop.clone(), hold).await;
    swarm::wait_until(Duration::from_secs(10), || {
        tally.messages.load(Ordering::Relaxed) >= 200
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = server.rss();

    swarm::open(server.addr, &path, sockets, tally.clone(), noop, hold).await;
    let want = (sockets + 200) as u64;
    let all = swarm::wait_until(Duration::from_secs(60), || {
        tally.messages.load(Ordering::Relaxed) >= want
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = server.rss();
    let connected = tally.connected.load(Ordering::Relaxed) - 200;
    println!(
        "ws-idle: {connected} idle seat-map sockets on {show} (each got its snapshot: {all}), engine {}",
        if redis_url.is_some() { "redis" } else { "memory" }
    );
    println!(
        "  server RSS before {:.1} MiB, after {:.1} MiB",
        before as f64 / 1048576.0,
        after as f64 / 1048576.0
    );
    println!(
        "  server memory per idle socket: {:.0} bytes ({:.2} KiB)",
        (after.saturating_sub(before)) as f64 / connected.max(1) as f64,
        (after.saturating_sub(before)) as f64 / connected.max(1) as f64 / 1024.0
    );
    println!("  failed sockets: {}", tally.failed.load(Ordering::Relaxed));
    Ok(())
}

/// A show of the demo catalog on `screen`.
async fn show_on(http: &str, screen: &str) -> Result<String, String> {
    let body = get_json(&format!("{http}/api/v1/movies/dune-3/shows")).await?;
    body["shows"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["screenId"] == screen))
        .and_then(|s| s["id"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| "no demo show found".into())
}

/// A minimal HTTP/1.1 GET over one TCP connection (loopback only).
async fn get_json(url: &str) -> Result<serde_json::Value, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").ok_or("http only")?;
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut s = tokio::net::TcpStream::connect(host).await.map_err(|e| e.to_string())?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).ok_or("no body")?;
    serde_json::from_str(body).map_err(|e| format!("{e}: {body:.200}"))
}
