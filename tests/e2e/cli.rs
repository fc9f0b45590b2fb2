//! The command line: help, configuration errors, and the admin commands against a server.

use serde_json::json;

use crate::support::{Server, run_cli};

#[test]
fn serve_help_documents_every_flag() {
    let (code, out, _) = run_cli(&["serve", "--help"], &[]);
    assert_eq!(code, 0);
    for flag in [
        "--config",
        "--data-dir",
        "--http-addr",
        "--coap-addr",
        "--mqtt-addr",
        "--allow-anonymous",
        "--fsync",
        "--shutdown-grace",
        "--log-format",
        "--log-level",
    ] {
        assert!(
            out.contains(flag),
            "{flag} missing from serve --help:\n{out}"
        );
    }
    assert!(
        out.contains("INGOT_DATA_DIR"),
        "environment variables are documented:\n{out}"
    );
}

#[test]
fn bad_configuration_exits_2_naming_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "fsync = \"sometimes\"\n[log]\npartitions = 0\n").unwrap();
    let (code, _, err) = run_cli(
        &[
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--shutdown-grace",
            "soon",
        ],
        &[("INGOT_HTTP_ADDR", "127.0.0.1:0")],
    );
    assert_eq!(code, 2);
    for key in ["fsync:", "log.partitions:", "shutdown_grace:"] {
        assert!(err.contains(key), "{key} missing from:\n{err}");
    }
    let (code, _, err) = run_cli(&["serve"], &[("INGOT_HTTP_ADDR", "not-an-address")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--http-addr"), "{err}");
}

#[test]
fn generate_config_prints_the_example() {
    let (code, out, _) = run_cli(&["generate-config"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("http_addr = \"0.0.0.0:8080\""));
    assert!(out.contains("[limits]"));
}

#[tokio::test]
async fn admin_commands_wrap_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let data_dir = dir.path().to_str().unwrap().to_owned();
    let cli = |args: Vec<String>| {
        let base = server.base.clone();
        let data_dir = data_dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut full: Vec<String> = args;
            full.extend(["--server".into(), base, "--data-dir".into(), data_dir]);
            let refs: Vec<&str> = full.iter().map(String::as_str).collect();
            run_cli(&refs, &[])
        })
    };

    let (code, out, err) = cli(vec!["device".into(), "add".into(), "probe-7".into()])
        .await
        .unwrap();
    assert_eq!(code, 0, "{err}");
    let token = out
        .lines()
        .find_map(|l| l.strip_prefix("token"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(token.starts_with("idt_"), "{out}");
    let (status, _) = server
        .post(
            Some(&token),
            "application/json",
            json!({"value": 1}).to_string(),
        )
        .await;
    assert_eq!(status, 201, "the printed token works");

    let (code, _, err) = cli(vec!["device".into(), "add".into(), "probe-7".into()])
        .await
        .unwrap();
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");

    let (code, out, _) = cli(vec![
        "key".into(),
        "add".into(),
        "--role".into(),
        "reader".into(),
        "--json".into(),
    ])
    .await
    .unwrap();
    assert_eq!(code, 0);
    let key: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(key["role"], "reader");
    let (code, _, _) = cli(vec![
        "key".into(),
        "rm".into(),
        key["id"].as_str().unwrap().into(),
    ])
    .await
    .unwrap();
    assert_eq!(code, 0);

    let (code, out, err) = cli(vec!["tenant".into(), "add".into(), "acme".into()])
        .await
        .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("acme"));

    let (code, _, _) = cli(vec!["device".into(), "rm".into(), "probe-7".into()])
        .await
        .unwrap();
    assert_eq!(code, 0);
    let (status, _) = server
        .post(
            Some(&token),
            "application/json",
            json!({"value": 1}).to_string(),
        )
        .await;
    assert_eq!(status, 401, "the removed device's token no longer works");
}
