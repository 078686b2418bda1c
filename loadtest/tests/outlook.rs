//! `sg-load flash-sale --outlook` on two of its sales (the undersubscribed
//! and the balanced one; the 10× sale is in BENCHMARKS.md): shoppers drawn
//! from stated distributions, each buyer's last outlook before admission
//! against whether they got a seat. Fails unless the calibration targets
//! hold: each band with 50 buyers or more keeps its promise, the expected
//! calibration error is at most 0.1, the Brier score beats both baselines
//! (balanced), ≥ 95 % of buyers told LIKELY (undersubscribed).

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_outlook_is_calibrated_on_an_undersubscribed_and_a_balanced_sale() {
    let sg_load = PathBuf::from(env!("CARGO_BIN_EXE_sg-load"));
    let bin = sg_load.with_file_name("showgate");
    assert!(bin.exists(), "build showgate first (cargo build): {}", bin.display());
    let out = Command::new(&sg_load)
        .args([
            "flash-sale",
            "--outlook",
            "--sales",
            "undersubscribed,balanced",
            "--max-seconds",
            "240",
        ])
        .arg("--server-bin")
        .arg(&bin)
        .output()
        .unwrap();
    let (report, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{report}\n{stderr}");
    assert!(report.contains("every target met"), "{report}");
    for sale in ["Undersubscribed", "Balanced"] {
        assert!(report.contains(&format!("== {sale}:")), "{report}");
    }
    // Every band's line is printed, with buyers scored.
    let scored: usize = report
        .lines()
        .filter_map(|l| l.trim().strip_prefix("buyers scored: "))
        .filter_map(|l| l.split_whitespace().next()?.parse::<usize>().ok())
        .sum();
    assert!(scored > 400, "{report}");
}
