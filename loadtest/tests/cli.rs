//! The sg-load binary's guard rails: loopback only, bounded runs.

use std::process::Command;

fn sg_load() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sg-load"))
}

#[test]
fn every_command_is_listed() {
    let out = sg_load().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["journey", "flash-sale", "bench", "ws-idle"] {
        assert!(help.contains(cmd), "{cmd} missing from --help:\n{help}");
    }
}

#[test]
fn targets_off_this_machine_are_refused() {
    for args in [
        vec!["journey", "--host", "http://10.0.0.1:8080"],
        vec!["flash-sale", "--redis-url", "redis://192.168.1.5:6379"],
        vec!["bench", "--parts", "holds", "--redis-url", "redis://example.com:6379"],
    ] {
        let out = sg_load().args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?} must be refused");
        assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"), "{args:?}");
    }
}

#[test]
fn runs_are_bounded() {
    let out = sg_load()
        .args(["flash-sale", "--shoppers", "2000000"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("1,000,000"));
}
