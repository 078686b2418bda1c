//! A short `sg-load chaos` on each backend: every fault the backend allows,
//! injected once under a running sale on three gateways, and the run's
//! verdict: nothing sold twice, no paid order lost or changed, every seat
//! map (HTTP and socket, on every gateway) equal to Postgres at the end,
//! the queue in order, no 500. The long runs are in BENCHMARKS.md.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// One soak at a time: each starts its own gateways, Redis and database.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn showgate_bin() -> PathBuf {
    let sg_load = PathBuf::from(env!("CARGO_BIN_EXE_sg-load"));
    let bin = sg_load.with_file_name("showgate");
    assert!(bin.exists(), "build showgate first (cargo build): {}", bin.display());
    bin
}

/// Runs the soak and answers its report; fails the test on a violation.
fn soak(args: &[&str]) -> String {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let out = Command::new(env!("CARGO_BIN_EXE_sg-load"))
        .arg("chaos")
        .args(args)
        .arg("--server-bin")
        .arg(showgate_bin())
        .output()
        .unwrap();
    let (report, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{report}\n{stderr}");
    assert!(report.contains("invariant violations: 0"), "{report}");
    report
}

/// How many times the report's fault table says `fault` was injected.
fn injected(report: &str, fault: &str) -> u32 {
    report
        .lines()
        .map(str::trim_start)
        .find(|l| l.split_whitespace().next() == Some(fault))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_sale_on_one_redis_survives_every_fault_with_nothing_lost() {
    let report = soak(&["--seconds", "75", "--fault-every", "10", "--shoppers", "30"]);
    for fault in [
        "RedisKilled",
        "RedisRestartedEmpty",
        "RedisFailoverLagging",
        "SubscriptionBlackholed",
        "PostgresPaused",
        "GatewayKilled",
        "GatewayDrained",
    ] {
        assert!(injected(&report, fault) >= 1, "{fault} never injected: {report}");
    }
    // The sale went on: some orders were paid, and every gateway's map
    // came to agree with Postgres.
    assert!(!report.contains("orders paid 0 "), "{report}");
    assert!(!report.contains("agreed with it NEVER"), "{report}");
}

#[test]
fn a_sale_on_a_redis_cluster_survives_its_faults_with_nothing_lost() {
    let report = soak(&[
        "--backend",
        "cluster",
        "--seconds",
        "55",
        "--fault-every",
        "10",
        "--shoppers",
        "30",
    ]);
    for fault in [
        "RedisKilled",
        "SubscriptionBlackholed",
        "PostgresPaused",
        "GatewayKilled",
        "GatewayDrained",
    ] {
        assert!(injected(&report, fault) >= 1, "{fault} never injected: {report}");
    }
    assert!(!report.contains("orders paid 0 "), "{report}");
}
