//! The processes a protocol benchmark runs: Ingot itself (see `Server` in `main.rs`), the
//! reference peers (Mosquitto, libcoap's example server) and the load generator
//! (`ingot sim`), with their CPU time and resident memory read from `/proc`.
//!
//! Every process listens on 127.0.0.1 only, and is stopped by its PID when its
//! measurement is done (and on drop, if a measurement fails half-way).

use std::io::Read as _;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use ingot_sim::Report;

/// CPU seconds (user + system) process `pid` has used.
pub fn cpu_seconds(pid: u32) -> f64 {
    stat_fields(&format!("/proc/{pid}/stat"), 11..13)
}

/// CPU seconds of this process's children that have been waited for.
fn children_cpu_seconds() -> f64 {
    stat_fields("/proc/self/stat", 13..15)
}

fn stat_fields(path: &str, range: std::ops::Range<usize>) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(range).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
    });
    ticks / 100.0
}

/// Resident memory of process `pid`, KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A free port on 127.0.0.1 (bound and released; the peer binds it right after).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Stops a child: SIGTERM, then SIGKILL after `grace`.
pub fn stop_child(child: &mut Child, grace: Duration) -> anyhow::Result<()> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()?;
    let deadline = Instant::now() + grace;
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            child.kill()?;
            child.wait()?;
            bail!("process {} did not stop within {grace:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Mosquitto on a free loopback port, persistence off, anonymous clients allowed.
pub struct Mosquitto {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Whether `mosquitto` is installed.
    pub fn available() -> bool {
        which("mosquitto").is_some()
    }

    /// Starts it and waits until it accepts connections.
    pub fn start() -> anyhow::Result<Mosquitto> {
        let binary = which("mosquitto").context("mosquitto is not installed")?;
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let conf = dir.path().join("mosquitto.conf");
        // No persistence (so no fsync): the point of the comparison. No limits that
        // Ingot does not have either: unlimited connections and in-flight messages.
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 log_dest none\nmax_connections -1\nmax_inflight_messages 0\n\
                 max_queued_messages 10000\n"
            ),
        )?;
        let child = Command::new(binary)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot run mosquitto")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut peer = Mosquitto {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline || peer.child.try_wait()?.is_some() {
                bail!("mosquitto did not start listening on {addr}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(peer)
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its version line.
    pub fn version() -> String {
        which("mosquitto")
            .and_then(|b| Command::new(b).arg("-h").output().ok())
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "mosquitto".into())
    }

    /// Stops it.
    pub fn stop(mut self) -> anyhow::Result<()> {
        stop_child(&mut self.child, Duration::from_secs(10))
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// libcoap's example server: POST to a resource it does not have creates it (2.01) with
/// `-d`, and later POSTs update it (2.04) — a trivial resource that accepts POST.
pub struct Libcoap {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Which binary.
    pub binary: String,
}

impl Libcoap {
    /// The first of libcoap's server binaries found on PATH.
    pub fn binary() -> Option<String> {
        [
            "coap-server",
            "coap-server-notls",
            "coap-server-openssl",
            "coap-server-gnutls",
        ]
        .into_iter()
        .find_map(which)
    }

    /// Starts it and waits until it answers.
    pub fn start() -> anyhow::Result<Libcoap> {
        let binary = Self::binary().context("libcoap's coap-server is not installed")?;
        let port = {
            let socket = UdpSocket::bind("127.0.0.1:0")?;
            socket.local_addr()?.port()
        };
        let child = Command::new(&binary)
            .args([
                "-A",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-v",
                "0",
                "-d",
                "4",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot run {binary}"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut peer = Libcoap {
            child,
            addr,
            binary,
        };
        // A CON GET of /.well-known/core until it answers.
        let probe = UdpSocket::bind("127.0.0.1:0")?;
        probe.set_read_timeout(Some(Duration::from_millis(100)))?;
        let get = [
            0x40, 0x01, 0x12, 0x34, 0xBB, b'.', b'w', b'e', b'l', b'l', b'-', b'k', b'n', b'o',
            b'w', b'n', 0x04, b'c', b'o', b'r', b'e',
        ];
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 1500];
        loop {
            probe.send_to(&get, addr)?;
            if probe.recv_from(&mut buf).is_ok() {
                break;
            }
            if Instant::now() > deadline || peer.child.try_wait()?.is_some() {
                bail!("{} did not answer on {addr}", peer.binary);
            }
        }
        Ok(peer)
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it.
    pub fn stop(mut self) -> anyhow::Result<()> {
        stop_child(&mut self.child, Duration::from_secs(10))
    }
}

impl Drop for Libcoap {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(name: &str) -> Option<String> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
            .map(|p| p.display().to_string())
    })
}

/// One run of `ingot sim`: its report, its own CPU time, and the peak resident memory of
/// a watched server during the run.
pub struct SimRun {
    /// The generator's report.
    pub report: Report,
    /// CPU seconds the generator used.
    pub sim_cpu_s: f64,
    /// Largest `VmRSS` of the watched process while the generator ran, KiB.
    pub peak_rss_kib: u64,
}

/// Runs `ingot sim <args> --json`, watching `server_pid`'s memory meanwhile.
pub fn sim(ingot: &Path, args: &[String], server_pid: Option<u32>) -> anyhow::Result<SimRun> {
    let before = children_cpu_seconds();
    let mut child = Command::new(ingot)
        .arg("sim")
        .args(args)
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot run {} sim", ingot.display()))?;
    let mut stdout = child.stdout.take().context("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let mut peak = 0;
    // Bounded: the generator's own --duration and --timeout end it; this is a safety net.
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(pid) = server_pid {
            peak = peak.max(rss_kib(pid));
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            child.kill()?;
            bail!("ingot sim ran for more than 5 minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let sim_cpu_s = children_cpu_seconds() - before;
    let text = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the output reader failed"))?;
    let report: Report = serde_json::from_str(&text)
        .with_context(|| format!("ingot sim exited with {status} without a report: {text}"))?;
    Ok(SimRun {
        report,
        sim_cpu_s,
        peak_rss_kib: peak,
    })
}
