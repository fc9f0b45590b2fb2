//! The CoAP endpoint of the real binary, driven by libcoap's `coap-client`.

use std::process::Command;

use serde_json::Value;

use crate::support::{Server, tool};

const COAP_CLIENT: [&str; 4] = [
    "coap-client",
    "coap-client-notls",
    "coap-client-openssl",
    "coap-client-gnutls",
];

#[tokio::test]
async fn coap_posts_are_stored_and_listed() {
    let Some(client) = tool(&COAP_CLIENT) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let token = server.add_device("probe-7").await;
    let uri = format!("{}/events?token={token}", server.coap);
    let body = r#"{"sensor":"probe1","kind":"temperature","value":21.5}"#;
    let client2 = client.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&client2)
            .args(["-m", "post", "-t", "50", "-B", "10", "-e", body, &uri])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let answer = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{answer} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let ids: Value =
        serde_json::from_str(answer.trim()).unwrap_or_else(|e| panic!("{e}: {answer:?}"));
    let id = ids["ids"][0].as_str().unwrap().to_owned();

    let events = server.wait_for_events("device=probe-7", 1).await;
    assert_eq!(events[0]["id"], id.as_str());
    assert_eq!(events[0]["value"], 21.5);
    assert_eq!(events[0]["sensor"], "probe1");

    // A wrong token is 4.01, with a diagnostic payload; nothing is stored.
    let bad = format!("{}/events?token=idt_wrong", server.coap);
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&client)
            .args([
                "-m",
                "post",
                "-t",
                "50",
                "-B",
                "10",
                "-e",
                "{\"value\":1}",
                &bad,
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("4.01"), "{text}");
    assert_eq!(server.all_events("").await.len(), 1);

    let metrics = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("ingot_events_accepted_total{protocol=\"coap\"} 1"),
        "{metrics}"
    );
}
