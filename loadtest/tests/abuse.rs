//! A short `sg-load abuse`: ten accounts at their limit on two nodes beside
//! honest shoppers. The budget holds across nodes (each account gets its
//! burst and rate once, not once per node), made-up ids cost Redis nothing,
//! honest shoppers are never refused, and Redis gives the tombstones' memory
//! back within twice their retention.

use std::path::PathBuf;
use std::process::Command;

fn showgate_bin() -> PathBuf {
    let sg_load = PathBuf::from(env!("CARGO_BIN_EXE_sg-load"));
    let bin = sg_load.with_file_name("showgate");
    assert!(bin.exists(), "build showgate first (cargo build): {}", bin.display());
    bin
}

/// The number after `prefix` on the report's line that starts with it.
fn figure(report: &str, prefix: &str) -> Option<f64> {
    let line = report.lines().find(|l| l.trim_start().starts_with(prefix))?;
    line.trim_start()[prefix.len()..]
        .split_whitespace()
        .next()?
        .trim_end_matches(':')
        .parse()
        .ok()
}

#[test]
fn the_abuse_budget_holds_across_two_nodes() {
    let seconds = 8;
    let out = Command::new(env!("CARGO_BIN_EXE_sg-load"))
        .args([
            "abuse",
            "--seconds",
            &seconds.to_string(),
            "--retention-seconds",
            "5",
            "--watch-fallback",
        ])
        .arg("--server-bin")
        .arg(showgate_bin())
        .output()
        .unwrap();
    let (report, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{report}\n{stderr}");
    // Ten accounts, 20/s and a burst of 40 each, once for both nodes (a
    // tenth more for the edges of the run).
    let held = figure(&report, "abuser     201:").expect("abusers held something");
    let budget = 10.0 * (20.0 * seconds as f64 + 40.0);
    assert!(held <= budget * 1.1, "{held} holds passed, budget {budget}: {report}");
    assert!(figure(&report, "abuser     429:").is_some_and(|n| n > 0.0), "{report}");
    // Made-up ids: nothing over the idle window's background (a few
    // commands of slack for the nodes' own timers).
    let junk = figure(
        &report,
        "junk ids: 600 requests (unknown shows, malformed and too old hold ids) cost Redis",
    )
    .expect("the junk line");
    assert!(junk <= 10.0, "junk ids cost Redis {junk} commands: {report}");
    assert!(
        !report.contains("honest     429"),
        "an honest shopper was refused: {report}"
    );
    assert!(report.contains("after: used_memory back"), "{report}");
}
