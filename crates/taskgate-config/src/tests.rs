//! The layers, the names in errors, and the ranges.

use clap::{CommandFactory, FromArgMatches, Parser};

use super::*;
use crate::database::DatabaseArgs;
use crate::engine::EngineArgs;
use crate::server::ServerArgs;
use crate::tokens::TokenArgs;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

fn load(args: ServeArgs) -> anyhow::Result<Config> {
    Config::load(args, &Sources::default())
}

/// Parses `argv` as the binary does, with `env` set for the parse only.
fn load_cli(argv: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Config> {
    let _guard = ENV_LOCK.lock();
    for (k, v) in env {
        std::env::set_var(k, v);
    }
    let matches = Cli::command().try_get_matches_from(argv);
    for (k, _) in env {
        std::env::remove_var(k);
    }
    let matches = matches?;
    let cli = Cli::from_arg_matches(&matches)?;
    Config::load(cli.serve, &Sources::from_matches(&matches))
}

pub(crate) static ENV_LOCK: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

#[test]
fn flags_override_file_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("taskgate.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:4000\"\ngrace-seconds = 60\n").unwrap();
    let cfg = load(ServeArgs {
        config: Some(path),
        tokens: TokenArgs {
            grace_seconds: Some(120),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    assert_eq!(cfg.server.listen.port(), 4000);
    assert_eq!(cfg.tokens.grace.num_seconds(), 120);
}

#[test]
fn bad_values_name_their_option() {
    let err = load(ServeArgs {
        server: ServerArgs {
            listen: Some("nope".into()),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap_err();
    assert!(format!("{err:#}").starts_with("listen:"), "{err:#}");
    let err = load(ServeArgs {
        database: DatabaseArgs {
            database_url: Some("mysql://x".into()),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().starts_with("database-url:"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "no-such-option = 1\n").unwrap();
    let err = load(ServeArgs {
        config: Some(path.clone()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("\"no-such-option\""), "{err}");
    // Secrets are never read from the file.
    std::fs::write(&path, "session-secret = \"x\"\n").unwrap();
    assert!(load(ServeArgs {
        config: Some(path),
        ..Default::default()
    })
    .is_err());
}

#[test]
fn out_of_range_values_are_refused_not_clamped() {
    for poll in [0, 61, 999] {
        let err = load(ServeArgs {
            engine: EngineArgs {
                realtime_poll_seconds: Some(poll),
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("realtime-poll-seconds: must be from 1 to 60, got {poll}")
        );
    }
    let err = load(ServeArgs {
        server: ServerArgs {
            request_timeout_seconds: Some(0),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        err.to_string().starts_with("request-timeout-seconds:"),
        "{err}"
    );
    let err = load(ServeArgs {
        tokens: TokenArgs {
            max_jwt_ttl_seconds: Some(i64::MAX),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().starts_with("max-jwt-ttl-seconds:"), "{err}");
    // Below 128 KiB every packet the SDK offloads would be refused.
    for bytes in [0, 128 * 1024 - 1, (512 << 20) + 1] {
        let err = load(ServeArgs {
            engine: EngineArgs {
                max_packet_bytes: Some(bytes),
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("max-packet-bytes:"), "{err}");
    }
}

#[test]
fn a_dev_cli_gets_room_for_runs_that_wait() {
    let engine = |limit: Option<u32>, dev: Option<u32>| {
        load(ServeArgs {
            engine: EngineArgs {
                concurrency_limit: limit,
                dev_max_concurrent_runs: dev,
                ..Default::default()
            },
            ..Default::default()
        })
    };
    assert_eq!(
        engine(Some(6), None)
            .unwrap()
            .engine
            .dev_max_concurrent_runs,
        12,
        "twice the concurrency limit unless set"
    );
    assert_eq!(
        engine(Some(6), Some(40))
            .unwrap()
            .engine
            .dev_max_concurrent_runs,
        40
    );
    let err = engine(Some(6), Some(5)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dev-max-concurrent-runs: must be from 6 to 10000, got 5"
    );
}

#[test]
fn errors_name_the_option_as_the_user_wrote_it() {
    let err = load_cli(&["serve", "--realtime-poll-seconds", "0"], &[]).unwrap_err();
    assert!(
        err.to_string().starts_with("--realtime-poll-seconds:"),
        "{err}"
    );
    let err = load_cli(&["serve"], &[("TASKGATE_CONCURRENCY_LIMIT", "5000")]).unwrap_err();
    assert!(
        err.to_string().starts_with("TASKGATE_CONCURRENCY_LIMIT:"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("taskgate.toml");
    std::fs::write(&path, "dequeue-wait-seconds = 99\n").unwrap();
    let err = load_cli(&["serve", "--config", path.to_str().unwrap()], &[]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("dequeue-wait-seconds (in {}):", path.display())),
        "{err}"
    );
}

#[test]
fn host_names_are_resolved_for_listen() {
    let cfg = load(ServeArgs {
        server: ServerArgs {
            listen: Some("localhost:3141".into()),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    assert_eq!(cfg.server.listen.port(), 3141);
    assert!(cfg.server.listen.ip().is_loopback());
    for bad in ["localhost", ":3000", "localhost:99999"] {
        assert!(
            load(ServeArgs {
                server: ServerArgs {
                    listen: Some(bad.into()),
                    ..Default::default()
                },
                ..Default::default()
            })
            .is_err(),
            "{bad}"
        );
    }
}

#[test]
fn public_url_must_be_http() {
    let err = load(ServeArgs {
        server: ServerArgs {
            public_url: Some("ftp://x".into()),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().starts_with("public-url:"), "{err}");
    let cfg = load(ServeArgs::default()).unwrap();
    assert_eq!(cfg.server.public_url, None, "the request's Host is used");
}

#[test]
fn database_passwords_are_redacted() {
    assert_eq!(
        redact_url("postgres://app:hunter2@db:5432/x"),
        "postgres://app:***@db:5432/x"
    );
    let cfg = load(ServeArgs {
        database: DatabaseArgs {
            database_url: Some("postgres://app:hunter2@db/x".into()),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    assert!(!format!("{cfg:?}").contains("hunter2"));
}

#[test]
fn every_option_is_merged_from_the_file() {
    // A file that sets one option of each section: each is read, and a flag still wins.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("taskgate.toml");
    std::fs::write(
        &path,
        "data-dir = \"/tmp/x\"\nmigrate-on-start = false\nadmin-email = \"ops@example.com\"\n\
         cache-ttl-seconds = 7\nconcurrency-limit = 3\napi-rate-limit = false\n",
    )
    .unwrap();
    let cfg = load_cli(
        &[
            "serve",
            "--config",
            path.to_str().unwrap(),
            "--concurrency-limit",
            "4",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(cfg.server.data_dir, std::path::PathBuf::from("/tmp/x"));
    assert!(!cfg.database.migrate_on_start);
    assert_eq!(cfg.sign_in.admin_email, "ops@example.com");
    assert_eq!(cfg.tokens.cache_ttl.as_secs(), 7);
    assert_eq!(
        cfg.engine.concurrency_limit, 4,
        "the flag wins over the file"
    );
    assert!(cfg.rate_limits.limits.is_none());
}
