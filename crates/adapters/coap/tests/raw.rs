//! The endpoint spoken to with exact datagrams from a UDP socket: duplicates, malformed
//! input, separate responses and their retransmission, back-pressure, shutdown, metrics.

mod support;

use std::time::Duration;

use coap_lite::{CoapOption, MessageType, Packet};
use ingot_adapter_coap::CoapConfig;
use support::{Server, client_socket, code, metric, recv, request};
use tokio::net::UdpSocket;

const SHORT: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(10);

fn post(kind: MessageType, mid: u16, token: &str, body: &str) -> Vec<u8> {
    let query = format!("token={token}");
    let mut packet = request(kind, 0x02, mid, &mid.to_be_bytes(), "events", &[&query]);
    packet.add_option(CoapOption::ContentFormat, vec![50]);
    packet.payload = body.as_bytes().to_vec();
    packet.to_bytes_with_limit(65_000).unwrap()
}

/// Every datagram received until `quiet` passes without one.
async fn drain(socket: &UdpSocket, quiet: Duration) -> Vec<Packet> {
    let mut packets = Vec::new();
    while let Some(packet) = recv(socket, quiet).await {
        packets.push(packet);
        if packets.len() > 100 {
            break;
        }
    }
    packets
}

#[tokio::test]
async fn a_duplicated_con_datagram_is_stored_once_and_answered_alike() {
    let server = Server::start().await;
    let token = server.device("dup-1").await;
    let socket = client_socket(&server).await;
    let datagram = post(MessageType::Confirmable, 0x1001, &token, r#"{"value":7}"#);
    // The same datagram twice, back to back (a retransmission racing the first).
    socket.send(&datagram).await.unwrap();
    socket.send(&datagram).await.unwrap();
    let answers = drain(&socket, Duration::from_millis(500)).await;
    let created: Vec<&Packet> = answers.iter().filter(|p| code(p) == "2.01").collect();
    assert_eq!(created.len(), 1, "one 2.01 for one request: {answers:?}");
    let answer = created[0];
    assert_eq!(answer.get_token(), &0x1001u16.to_be_bytes());
    if answer.header.get_type() == MessageType::Confirmable {
        // The duplicate arrived while the first was in flight: an empty ACK stopped the
        // retransmissions and the 2.01 came separately. Acknowledge it.
        let ack = ingot_adapter_coap::message::empty(
            ingot_adapter_coap::message::Kind::Ack,
            answer.header.message_id,
        );
        socket.send(&ack).await.unwrap();
    } else {
        assert_eq!(answer.header.message_id, 0x1001);
    }

    // Later retransmissions get the remembered answer again, byte for byte.
    socket.send(&datagram).await.unwrap();
    let first_again = recv(&socket, LONG).await.expect("answered again");
    socket.send(&datagram).await.unwrap();
    let second_again = recv(&socket, LONG).await.expect("answered again");
    assert_eq!(first_again, second_again);
    assert_eq!(first_again.header.message_id, 0x1001);

    let events = server.settled_events("dup-1").await;
    assert_eq!(events.len(), 1, "stored once");
    assert!(server.metrics.duplicates() >= 3);
    assert_eq!(server.metrics.responses("2.01"), 1);
}

#[tokio::test]
async fn a_duplicated_non_datagram_is_stored_once_and_not_answered_again() {
    let server = Server::start().await;
    let token = server.device("dup-2").await;
    let socket = client_socket(&server).await;
    let datagram = post(
        MessageType::NonConfirmable,
        0x2002,
        &token,
        r#"{"value":8}"#,
    );
    socket.send(&datagram).await.unwrap();
    let answer = recv(&socket, LONG).await.expect("a NON response");
    assert_eq!(answer.header.get_type(), MessageType::NonConfirmable);
    assert_eq!(code(&answer), "2.01");
    socket.send(&datagram).await.unwrap();
    assert!(
        recv(&socket, SHORT).await.is_none(),
        "a duplicate NON is ignored"
    );
    assert_eq!(server.settled_events("dup-2").await.len(), 1);
}

#[tokio::test]
async fn malformed_datagrams_never_stop_the_server() {
    let server = Server::start().await;
    let socket = client_socket(&server).await;
    for garbage in [
        &b""[..],
        b"\x01",
        b"\x40\x01",
        b"\x80\x01\x00\x01",
        b"\x40\x01\x00\x02\xff",
        b"\x4f\x01\x00\x03abcdefghijklmno",
        b"\x40\x02\x00\x04\xbd",
        b"\x60\x45\x00\x05",
        &[0xFF; 2000][..],
    ] {
        socket.send(garbage).await.unwrap();
    }
    let answers = drain(&socket, SHORT).await;
    for answer in &answers {
        assert_eq!(answer.header.get_type(), MessageType::Reset, "{answers:?}");
    }
    // A CoAP ping is answered with RST.
    socket.send(&[0x40, 0, 0x12, 0x34]).await.unwrap();
    let pong = recv(&socket, LONG).await.expect("RST to a ping");
    assert_eq!(
        (pong.header.get_type(), pong.header.message_id),
        (MessageType::Reset, 0x1234)
    );
    // Still serving.
    let health = request(MessageType::Confirmable, 0x01, 9, b"h", "health", &[]);
    socket.send(&health.to_bytes().unwrap()).await.unwrap();
    let ok = recv(&socket, LONG).await.expect("health answered");
    assert_eq!(
        (code(&ok), ok.payload.as_slice()),
        ("2.05".to_owned(), &b"ok"[..])
    );
    assert!(metric(&server.metrics_text(), "ingot_coap_malformed_total") >= 5.0);
}

#[tokio::test]
async fn a_slow_ingest_gets_an_empty_ack_then_a_separate_response_until_acknowledged() {
    let server = Server::start_with(
        CoapConfig {
            separate_response_after: Duration::ZERO,
            ack_timeout: Duration::from_millis(100),
            ..CoapConfig::default()
        },
        false,
    )
    .await;
    let token = server.device("slow-1").await;
    let socket = client_socket(&server).await;
    socket
        .send(&post(
            MessageType::Confirmable,
            0x3003,
            &token,
            r#"{"value":1}"#,
        ))
        .await
        .unwrap();
    let ack = recv(&socket, LONG).await.expect("an empty ACK");
    assert_eq!(ack.header.get_type(), MessageType::Acknowledgement);
    assert_eq!(
        (code(&ack), ack.header.message_id),
        ("0.00".to_owned(), 0x3003)
    );
    let response = recv(&socket, LONG).await.expect("the separate response");
    assert_eq!(response.header.get_type(), MessageType::Confirmable);
    assert_eq!(code(&response), "2.01");
    assert_eq!(response.get_token(), &0x3003u16.to_be_bytes());
    // Not acknowledged: it comes again, with the same message id.
    let again = recv(&socket, LONG).await.expect("a retransmission");
    assert_eq!(again, response);
    let ack = ingot_adapter_coap::message::empty(
        ingot_adapter_coap::message::Kind::Ack,
        response.header.message_id,
    );
    socket.send(&ack).await.unwrap();
    let after = drain(&socket, Duration::from_millis(700)).await;
    assert!(
        after.len() <= 1,
        "retransmissions stop once acknowledged: {after:?}"
    );
    assert_eq!(server.settled_events("slow-1").await.len(), 1);
}

#[tokio::test]
async fn beyond_the_in_flight_bound_requests_get_503_with_max_age() {
    let server = Server::start_with(
        CoapConfig {
            max_in_flight_per_endpoint: 1,
            overload_max_age: Duration::from_secs(2),
            ..CoapConfig::default()
        },
        false,
    )
    .await;
    let token = server.device("busy-1").await;
    let socket = client_socket(&server).await;
    for mid in 0..20u16 {
        socket
            .send(&post(
                MessageType::Confirmable,
                0x4000 + mid,
                &token,
                r#"{"value":1}"#,
            ))
            .await
            .unwrap();
    }
    let answers = drain(&socket, Duration::from_millis(500)).await;
    let busy: Vec<&Packet> = answers.iter().filter(|p| code(p) == "5.03").collect();
    let created = answers.iter().filter(|p| code(p) == "2.01").count();
    assert!(created >= 1, "{answers:?}");
    assert!(!busy.is_empty(), "{answers:?}");
    for packet in busy {
        let max_age = packet.get_first_option(CoapOption::MaxAge).cloned();
        assert_eq!(max_age, Some(vec![2]), "Max-Age says when to retry");
        assert!(String::from_utf8_lossy(&packet.payload).contains("busy"));
    }
    assert_eq!(server.settled_events("busy-1").await.len(), created);
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests_then_returns() {
    let server = Server::start_with(
        CoapConfig {
            separate_response_after: Duration::ZERO,
            ..CoapConfig::default()
        },
        false,
    )
    .await;
    let token = server.device("drain-1").await;
    let socket = client_socket(&server).await;
    socket
        .send(&post(
            MessageType::Confirmable,
            0x5005,
            &token,
            r#"{"value":5}"#,
        ))
        .await
        .unwrap();
    // The empty ACK proves the request was taken before the drain starts.
    let ack = recv(&socket, LONG).await.expect("an empty ACK");
    assert_eq!(code(&ack), "0.00");
    server.begin_stop();
    let response = recv(&socket, LONG)
        .await
        .expect("the in-flight request is answered");
    assert_eq!(code(&response), "2.01");
    let events = server.wait_for_events("drain-1", 1).await;
    assert_eq!(events.len(), 1);
    server.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn metrics_count_requests_responses_and_state() {
    let server = Server::start().await;
    let token = server.device("m-1").await;
    assert_eq!(
        support::code(&support::post_json(&server, &token, r#"{"value":1}"#).await),
        "2.01"
    );
    let socket = client_socket(&server).await;
    let missing = request(MessageType::Confirmable, 0x01, 1, b"m", "missing", &[]);
    socket.send(&missing.to_bytes().unwrap()).await.unwrap();
    assert_eq!(code(&recv(&socket, LONG).await.unwrap()), "4.04");
    let text = server.metrics_text();
    for (sample, at_least) in [
        (r#"ingot_coap_requests_total{method="POST"}"#, 1.0),
        (r#"ingot_coap_requests_total{method="GET"}"#, 1.0),
        (r#"ingot_coap_responses_total{code="2.01"}"#, 1.0),
        (r#"ingot_coap_responses_total{code="4.04"}"#, 1.0),
        ("ingot_coap_duplicates_total", 0.0),
        ("ingot_coap_block_transfers", 0.0),
        ("ingot_coap_observers", 0.0),
        ("ingot_coap_in_flight", 0.0),
        ("ingot_coap_endpoints", 2.0),
        ("ingot_coap_request_seconds_count", 1.0),
    ] {
        assert!(metric(&text, sample) >= at_least, "{sample}:\n{text}");
    }
}

#[tokio::test]
async fn anonymous_devices_may_write_but_not_read() {
    let server = Server::start_with(CoapConfig::default(), true).await;
    let socket = client_socket(&server).await;
    let mut anonymous = request(MessageType::Confirmable, 0x02, 1, b"a", "events", &[]);
    anonymous.payload = br#"{"device":"anon-1","value":3}"#.to_vec();
    socket.send(&anonymous.to_bytes().unwrap()).await.unwrap();
    assert_eq!(code(&recv(&socket, LONG).await.unwrap()), "2.01");
    let read = request(
        MessageType::Confirmable,
        0x01,
        2,
        b"b",
        "events",
        &["device=anon-1"],
    );
    socket.send(&read.to_bytes().unwrap()).await.unwrap();
    let refused = recv(&socket, LONG).await.unwrap();
    assert_eq!(code(&refused), "4.01");
    assert!(String::from_utf8_lossy(&refused.payload).contains("token="));
    assert_eq!(server.wait_for_events("anon-1", 1).await.len(), 1);
}
