//! Bots vs the queue (`sg-load bots-vs-queue`) on each engine: on a gated
//! sale whose seats come back, bots that never queued get no seat, and every
//! returned pair goes to the first admitted shopper waiting for it.

use std::path::PathBuf;
use std::process::Command;

/// The showgate binary beside sg-load (`cargo test --workspace` builds both).
fn showgate_bin() -> PathBuf {
    let sg_load = PathBuf::from(env!("CARGO_BIN_EXE_sg-load"));
    let bin = sg_load.with_file_name("showgate");
    assert!(bin.exists(), "build showgate first (cargo build): {}", bin.display());
    bin
}

fn bots_vs_queue(engine: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_sg-load"))
        .args(["bots-vs-queue", "--shoppers", "16", "--bots", "8", "--engine", engine])
        .arg("--server-bin")
        .arg(showgate_bin())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{engine}: {stdout}\n{stderr}");
    assert!(stdout.contains("seats to bots: 0"), "{stdout}");
    assert!(
        stdout.contains("every returned seat went to the first waiter who fits"),
        "{stdout}"
    );
    // The bots did try: every door answered them, and only with 403.
    for door in ["hold by id", "best available", "waiting list", "borrowed pass"] {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(door))
            .unwrap_or_default();
        assert!(line.contains("403:"), "{engine}: {door} never refused: {stdout}");
    }
    assert!(!stdout.contains(" 201:"), "{stdout}");
}

#[test]
fn bots_get_nothing_on_the_memory_engine() {
    bots_vs_queue("memory");
}

#[test]
fn bots_get_nothing_on_redis() {
    bots_vs_queue("redis");
}

#[test]
fn bots_get_nothing_on_a_redis_cluster() {
    bots_vs_queue("cluster");
}
