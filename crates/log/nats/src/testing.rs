//! Real `nats-server` processes for tests and benchmarks (feature `testing`).
//!
//! [`NatsServer::start`] runs one JetStream server, [`NatsCluster::start`] a cluster of
//! them, on free loopback ports with their storage in a temporary directory, and waits
//! until JetStream answers. Every process is killed (SIGKILL) when its value drops, also
//! when a test panics, so no server outlives the test that started it.
//!
//! The binary is `$INGOT_NATS_SERVER` or `nats-server` on the `PATH` (Debian's package
//! `nats-server`). Without one, [`nats_server_binary`] returns `None` so a test can skip,
//! except with `CI=true`, where it panics: CI never skips the NATS tests.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

/// Whether this runs in CI (`CI=true` or `CI=1`), where missing servers fail tests.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The `nats-server` binary, or `None` outside CI when there is none (see module docs).
///
/// # Panics
///
/// In CI when no binary is found.
pub fn nats_server_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("INGOT_NATS_SERVER") {
        return Some(PathBuf::from(path));
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nats-server"))
            .find(|candidate| candidate.is_file())
    });
    match found {
        Some(path) => Some(path),
        None if in_ci() => {
            panic!("CI=true and nats-server is missing (apt-get install nats-server; see .ci/run)")
        }
        None => {
            eprintln!(
                "note: skipping a NATS test: no nats-server on PATH (apt-get install nats-server)"
            );
            None
        }
    }
}

/// Free loopback ports, all distinct (the listeners are held until every port is chosen).
fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

/// One running `nats-server` with JetStream.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    binary: PathBuf,
    config: PathBuf,
    /// Its name in the cluster (`n1`, `n2`...).
    pub name: String,
    /// Its client port on 127.0.0.1.
    pub port: u16,
    /// Its directory (storage, log file); removed with the value when it owns it.
    dir: PathBuf,
    _owned: Option<tempfile::TempDir>,
}

impl NatsServer {
    /// Starts a single JetStream server (R1 streams only) and waits until it answers.
    pub async fn start(binary: &Path) -> Result<NatsServer, String> {
        let dir = tempfile::Builder::new()
            .prefix("ingot-nats-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        let ports = free_ports(1).map_err(|e| format!("free port: {e}"))?;
        let path = dir.path().to_path_buf();
        let mut server = NatsServer::configure(binary, &path, "n1", ports[0], None)?;
        server._owned = Some(dir);
        server.spawn()?;
        server.wait_ready().await?;
        Ok(server)
    }

    /// Writes the configuration of one server; `cluster` is (its route port, every route port).
    fn configure(
        binary: &Path,
        dir: &Path,
        name: &str,
        port: u16,
        cluster: Option<(u16, &[u16])>,
    ) -> Result<NatsServer, String> {
        let store = dir.join(name);
        let mut text = format!(
            "server_name: \"{name}\"\nlisten: \"127.0.0.1:{port}\"\n\
             max_payload: 8388608\n\
             log_file: \"{}\"\n\
             jetstream {{\n  store_dir: \"{}\"\n  max_memory_store: 268435456\n  max_file_store: 8589934592\n}}\n",
            dir.join(format!("{name}.log")).display(),
            store.display(),
        );
        if let Some((route_port, routes)) = cluster {
            let routes: Vec<String> = routes
                .iter()
                .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
                .collect();
            text.push_str(&format!(
                "cluster {{\n  name: \"ingot-test\"\n  listen: \"127.0.0.1:{route_port}\"\n  routes: [{}]\n}}\n",
                routes.join(", ")
            ));
        }
        let config = dir.join(format!("{name}.conf"));
        std::fs::write(&config, text).map_err(|e| format!("{}: {e}", config.display()))?;
        Ok(NatsServer {
            child: None,
            binary: binary.to_path_buf(),
            config,
            name: name.to_owned(),
            port,
            dir: dir.to_path_buf(),
            _owned: None,
        })
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's own log (for failure messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join(format!("{}.log", self.name)))
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Kills the server at once (SIGKILL), as a crash or a lost machine would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on its configuration and storage; waits until its port
    /// accepts connections (a cluster member also needs its peers to serve JetStream).
    pub async fn restart(&mut self) -> Result<(), String> {
        self.kill();
        self.spawn()?;
        self.wait_listening().await
    }

    async fn wait_listening(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!(
                    "nats-server {} exited with {status}:\n{}",
                    self.name,
                    self.log_tail()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "nats-server {} does not listen on {}:\n{}",
                    self.name,
                    self.port,
                    self.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        self.wait_listening().await?;
        wait_jetstream(&[self.url()], 1)
            .await
            .map_err(|e| format!("{e}\n{}", self.log_tail()))
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits (up to 30 s) until JetStream answers through `urls` and can place a stream of
/// `replicas` replicas (a new cluster first elects its leaders and learns its peers).
async fn wait_jetstream(urls: &[String], replicas: usize) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < deadline {
        match async_nats::connect(urls).await {
            Ok(client) => {
                let js = async_nats::jetstream::new(client);
                let probe = async_nats::jetstream::stream::Config {
                    name: "INGOT_TEST_PROBE".into(),
                    subjects: vec!["ingot-test-probe".into()],
                    storage: async_nats::jetstream::stream::StorageType::Memory,
                    num_replicas: replicas,
                    ..Default::default()
                };
                match js.create_stream(probe).await {
                    Ok(_) => {
                        let _ = js.delete_stream("INGOT_TEST_PROBE").await;
                        return Ok(());
                    }
                    Err(e) => last = e.to_string(),
                }
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!(
        "JetStream at {} could not place an R{replicas} stream within 30 s: {last}",
        urls.join(",")
    ))
}

/// A JetStream cluster of `nats-server`s on loopback ports.
#[derive(Debug)]
pub struct NatsCluster {
    /// The servers, `n1`, `n2`...
    pub nodes: Vec<NatsServer>,
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    /// Starts `n` clustered servers (3 for R3 streams) and waits until JetStream answers.
    pub async fn start(binary: &Path, n: usize) -> Result<NatsCluster, String> {
        let dir = tempfile::Builder::new()
            .prefix("ingot-nats-cluster-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        let ports = free_ports(2 * n).map_err(|e| format!("free ports: {e}"))?;
        let (client_ports, route_ports) = ports.split_at(n);
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let mut node = NatsServer::configure(
                binary,
                dir.path(),
                &format!("n{}", i + 1),
                client_ports[i],
                Some((route_ports[i], route_ports)),
            )?;
            node.spawn()?;
            nodes.push(node);
        }
        for node in &mut nodes {
            node.wait_listening().await?;
        }
        let urls: Vec<String> = nodes.iter().map(NatsServer::url).collect();
        wait_jetstream(&urls, n).await?;
        Ok(NatsCluster { nodes, _dir: dir })
    }

    /// Every server's URL, comma-separated (the `--log` form).
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The server named `name`.
    pub fn node_mut(&mut self, name: &str) -> Option<&mut NatsServer> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }
}
