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

/// The registry commands of issue #6: labels, list, show, disable/enable, rotate with a
/// grace period, keys with an expiry, tenants listed, disabled and removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_key_and_tenant_commands_manage_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let admin = server.admin_key();
    let env = [
        ("INGOT_SERVER", server.base.as_str()),
        ("INGOT_API_KEY", admin.as_str()),
    ];
    let cli = |args: &[&str]| {
        let (code, out, err) = run_cli(args, &env);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
        out
    };
    let json = |args: &[&str]| -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&cli(&args)).unwrap()
    };

    let added = json(&["device", "add", "probe-7", "--label", "city=seville"]);
    let token = added["token"].as_str().unwrap().to_owned();
    let listed = json(&["device", "list"]);
    assert_eq!(listed["devices"][0]["labels"], json!({"city": "seville"}));
    assert_eq!(json(&["device", "show", "probe-7"])["enabled"], true);
    let event = || async {
        server
            .post(Some(&token), "application/json", r#"{"value": 1}"#)
            .await
            .0
    };
    assert_eq!(event().await, 201);
    cli(&["device", "disable", "probe-7"]);
    assert_eq!(event().await, 403);
    cli(&["device", "enable", "probe-7"]);
    assert_eq!(event().await, 201);
    let rotated = json(&["device", "rotate", "probe-7", "--grace", "1h"]);
    assert_ne!(rotated["token"], token.as_str());
    assert!(rotated["previous_token_valid_until"].is_string());
    assert_eq!(
        event().await,
        201,
        "the old token works during the grace period"
    );

    let key = json(&["key", "add", "--role", "reader", "--expires", "90d"]);
    assert!(key["expires"].is_string(), "{key}");
    let keys = json(&["key", "list"]);
    let listed = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == key["id"])
        .expect("the new key is listed");
    assert!(
        listed.get("key").is_none(),
        "the secret is never listed again"
    );
    let (code, _, err) = run_cli(&["key", "add", "--expires", "yesterday"], &env);
    assert_ne!(code, 0);
    assert!(err.contains("expires"), "{err}");

    cli(&["tenant", "add", "acme"]);
    cli(&["tenant", "disable", "acme"]);
    let tenants = json(&["tenant", "list"]);
    let acme = tenants["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "acme")
        .expect("acme is listed");
    assert_eq!(acme["disabled"], true);
    cli(&["tenant", "rm", "acme"]);
    let tenants = json(&["tenant", "list"]);
    assert!(
        tenants["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["name"] != "acme" || t["deleting"] == true)
    );
    server.stop().await;
}
