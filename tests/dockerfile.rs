//! The Dockerfile cannot be built on this machine (no Docker engine runs
//! here), so what can be checked without building is checked: every path
//! it copies from the build context exists, the runtime image carries the
//! pages, scripts and migrations, and it runs as a non-root user with a
//! health check.

use std::path::Path;

fn dockerfile() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).expect("Dockerfile")
}

/// The context paths of every `COPY` that is not `--from` another stage.
fn copied() -> Vec<String> {
    dockerfile()
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from="))
        .flat_map(|l| {
            let words: Vec<&str> = l.split_whitespace().skip(1).filter(|w| !w.starts_with("--")).collect();
            // Every word but the last (the destination) is a source.
            words[..words.len() - 1]
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_path_the_dockerfile_copies_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = copied();
    assert!(sources.len() >= 8, "{sources:?}");
    for s in &sources {
        assert!(
            root.join(s).exists(),
            "the Dockerfile copies {s}, which is not in the repository"
        );
    }
    for needed in ["static/", "lua/", "migrations/", "src/", "Cargo.lock"] {
        assert!(sources.iter().any(|s| s == needed), "{needed} is not copied");
    }
}

#[test]
fn the_image_runs_as_a_non_root_user_with_a_health_check() {
    let d = dockerfile();
    let user = d
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("USER "))
        .expect("a USER line");
    assert!(user.trim() != "root" && user.trim() != "0", "runs as {user}");
    assert!(d.contains("HEALTHCHECK") && d.contains("/healthz"));
    assert!(d.contains("EXPOSE 8080"));
}
