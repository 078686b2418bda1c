//! The binary itself: its commands and its refusals at start-up.

mod common;

use std::process::Command;

use showgate::auth::Tokens;

fn showgate() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_showgate"));
    for var in [
        "REDIS_URL",
        "REDIS_CLUSTER_NODES",
        "DATABASE_URL",
        "JWT_SECRET",
        "CATALOG",
        "BIND",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

#[test]
fn token_prints_a_token_signed_with_the_configured_secret() {
    let out = showgate()
        .args(["token", "--user", "ops-1", "--admin"])
        .env("JWT_SECRET", "s3cret")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap();
    let user = Tokens::new("s3cret").verify(token.trim()).unwrap();
    assert_eq!((user.id.as_str(), user.admin), ("ops-1", true));
    assert!(Tokens::new("other").verify(token.trim()).is_err());
}

#[test]
fn bad_configuration_stops_start_up_naming_the_setting() {
    let cases: [(&str, &str, &str); 4] = [
        ("HOLD_TTL_SECONDS", "abc", "hold-ttl-seconds"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL"),
        ("BIND", "nowhere", "bind"),
    ];
    for (var, value, named) in cases {
        let out = showgate().env(var, value).output().unwrap();
        assert!(!out.status.success(), "{var}={value} must fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(named), "{var}={value}: {stderr}");
    }
    let out = showgate()
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .env("BIND", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach Redis (REDIS_URL)"));
}

#[tokio::test]
async fn import_catalog_validates_then_stores_and_migrate_is_idempotent() {
    let db = common::fresh_database().await;
    for _ in 0..2 {
        let out = showgate().arg("migrate").env("DATABASE_URL", &db).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let dir = std::env::temp_dir().join(format!("sg-cat-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut data = showgate::domain::catalog::demo(chrono::NaiveDate::from_ymd_opt(2027, 1, 30).unwrap());
    data.movies.truncate(4);
    let good = dir.join("good.json");
    std::fs::write(&good, serde_json::to_string(&data).unwrap()).unwrap();
    let out = showgate()
        .arg("import-catalog")
        .arg(&good)
        .env("DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("128 shows"));

    data.shows[0].price = "free".into();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, serde_json::to_string(&data).unwrap()).unwrap();
    let out = showgate()
        .arg("import-catalog")
        .arg(&bad)
        .env("DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("price"));

    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let shows: i64 = sqlx::query_scalar("SELECT count(*) FROM shows")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(shows, 128, "the bad file wrote nothing");
    // Shows land in their month's partition: January and February 2027.
    let parts: Vec<String> = sqlx::query_scalar("SELECT tableoid::regclass::text FROM shows GROUP BY 1 ORDER BY 1")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(parts, vec!["shows_202701", "shows_202702"]);
}
