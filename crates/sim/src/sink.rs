//! Null peers for measuring the generator itself: a UDP socket and an MQTT listener that
//! read and throw away, on their own threads (so their CPU is not the generator's).
//!
//! - [`UdpSink`] counts datagrams and never answers (CoAP NON requests are counted as
//!   unanswered by the generator, which is what makes it a pure send measurement).
//! - [`MqttSink`] answers CONNECT with CONNACK and PINGREQ with PINGRESP (the end-of-run
//!   barrier of QoS 0), acknowledges QoS 1 publishes with PUBACK if asked, and otherwise
//!   frames and drops what it reads. It frames with `ingot-codec-mqtt`'s header check
//!   only, never decoding a publish.
//!
//! Used by the crate's tests (pacing against a sink) and by `ingot-bench sim` (the
//! generator's capacity on one core). Both bind 127.0.0.1 on a free port.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use ingot_codec_mqtt::{MAX_PACKET_SIZE, check, packet_type};

/// A UDP socket that counts and drops datagrams.
#[derive(Debug)]
pub struct UdpSink {
    addr: SocketAddr,
    received: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpSink {
    /// Binds 127.0.0.1:0 and starts reading.
    pub fn start() -> std::io::Result<UdpSink> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let addr = socket.local_addr()?;
        let received = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (received, stop) = (received.clone(), stop.clone());
            std::thread::Builder::new()
                .name("udp-sink".into())
                .spawn(move || {
                    let mut buf = vec![0u8; 65_536];
                    let mut count = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        match socket.recv_from(&mut buf) {
                            Ok(_) => {
                                count += 1;
                                if count.is_multiple_of(256) {
                                    received.store(count, Ordering::Relaxed);
                                }
                            }
                            Err(_) => received.store(count, Ordering::Relaxed),
                        }
                    }
                    received.store(count, Ordering::Relaxed);
                })?
        };
        Ok(UdpSink {
            addr,
            received,
            stop,
            thread: Some(thread),
        })
    }

    /// Where to send.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Datagrams received so far (updated every 256 and at quiet moments).
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

impl Drop for UdpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A TCP listener speaking just enough MQTT to be published to.
#[derive(Debug)]
pub struct MqttSink {
    addr: SocketAddr,
    packets: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MqttSink {
    /// Binds 127.0.0.1:0; `puback`: acknowledge QoS 1 publishes (else only CONNACK and
    /// PINGRESP are ever sent). MQTT 3.1.1 framing of the answers.
    pub fn start(puback: bool) -> std::io::Result<MqttSink> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let packets = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (packets, stop) = (packets.clone(), stop.clone());
            std::thread::Builder::new()
                .name("mqtt-sink".into())
                .spawn(move || {
                    let mut readers = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        match listener.accept() {
                            Ok((stream, _)) => {
                                let (packets, stop) = (packets.clone(), stop.clone());
                                if let Ok(reader) = std::thread::Builder::new()
                                    .name("mqtt-sink-conn".into())
                                    .spawn(move || serve(stream, puback, &packets, &stop))
                                {
                                    readers.push(reader);
                                }
                            }
                            Err(_) => std::thread::sleep(Duration::from_millis(5)),
                        }
                    }
                    for reader in readers {
                        let _ = reader.join();
                    }
                })?
        };
        Ok(MqttSink {
            addr,
            packets,
            stop,
            thread: Some(thread),
        })
    }

    /// Where to connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Packets read so far (all connections; updated every 1024 and at quiet moments).
    pub fn packets(&self) -> u64 {
        self.packets.load(Ordering::Relaxed)
    }
}

impl Drop for MqttSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(mut stream: TcpStream, puback: bool, packets: &AtomicU64, stop: &AtomicBool) {
    if stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .is_err()
    {
        return;
    }
    let mut buf = vec![0u8; 256 << 10];
    let (mut filled, mut local) = (0usize, 0u64);
    let mut answers = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match stream.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                packets.fetch_add(std::mem::take(&mut local), Ordering::Relaxed);
                continue;
            }
            Err(_) => break,
        }
        let mut at = 0;
        loop {
            let header = match check(&buf[at..filled], MAX_PACKET_SIZE) {
                Ok(Some(header)) => header,
                Ok(None) => break,
                Err(_) => return,
            };
            let len = header.packet_len();
            if len > buf.len() {
                // Larger than the buffer: grow it and read the rest.
                buf.resize(len, 0);
                break;
            }
            local += 1;
            match header.packet_type() {
                packet_type::CONNECT => answers.extend_from_slice(&[0x20, 2, 0, 0]),
                packet_type::PINGREQ => answers.extend_from_slice(&[0xD0, 0]),
                packet_type::PUBLISH if puback && (header.first_byte >> 1) & 3 == 1 => {
                    // The packet id follows the topic.
                    let body = &buf[at + header.header_len..at + len];
                    if body.len() >= 2 {
                        let topic_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
                        if let Some(id) = body.get(2 + topic_len..4 + topic_len) {
                            answers.extend_from_slice(&[0x40, 2, id[0], id[1]]);
                        }
                    }
                }
                _ => {}
            }
            at += len;
        }
        buf.copy_within(at..filled, 0);
        filled -= at;
        if local >= 1024 {
            packets.fetch_add(std::mem::take(&mut local), Ordering::Relaxed);
        }
        if !answers.is_empty() {
            if stream.write_all(&answers).is_err() {
                break;
            }
            answers.clear();
        }
    }
    packets.fetch_add(local, Ordering::Relaxed);
}
