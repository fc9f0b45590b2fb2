//! The `ingot` command: configuration, wiring and lifecycle of the server, and the admin
//! commands. `src/main.rs` of the `ingot` package only calls [`main`].
//!
//! This crate is the binary's body, so it uses `anyhow` for errors that end up printed to
//! the terminal; the library crates below it have typed errors.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod cert;
pub mod client;
pub mod config;
pub mod serve;
pub mod telemetry;

use client::ClientArgs;
use config::{ServeArgs, ServeConfig};

/// Ingot: IoT events over CoAP, MQTT and HTTP into a durable log, a store and a query API.
#[derive(Debug, Parser)]
#[command(name = "ingot", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: HTTP ingest and API, durable log, store writer.
    Serve(ServeArgs),
    /// Manage devices (needs an admin key).
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Manage API keys (needs an admin key).
    Key {
        #[command(subcommand)]
        command: KeyCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Manage tenants (needs a system key, such as the first admin key).
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Query events and series (needs a reader key or better).
    Query {
        #[command(subcommand)]
        command: QueryCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print the example configuration file (every key with its default).
    GenerateConfig,
    /// TLS certificates for the HTTP and MQTT listeners.
    Cert {
        #[command(subcommand)]
        command: CertCommand,
    },
    /// Simulate devices and generate load (CoAP, MQTT or HTTP), reporting rate and latency.
    Sim(Box<ingot_sim::cli::SimArgs>),
}

#[derive(Debug, Subcommand)]
enum DeviceCommand {
    /// Register a device and print its token (shown only once).
    Add {
        /// Device name: letters, digits and . _ : ~ @ -
        name: String,
        /// A label `key=value` (repeatable), e.g. `--label city=seville`.
        #[arg(long = "label", value_name = "KEY=VALUE", value_parser = client::parse_label)]
        labels: Vec<(String, String)>,
    },
    /// List the tenant's devices with status, last seen and event rate.
    List,
    /// Show one device.
    Show {
        /// Device name.
        name: String,
    },
    /// Refuse a device's token until it is enabled again (its data is kept).
    Disable {
        /// Device name.
        name: String,
    },
    /// Accept a disabled device's token again.
    Enable {
        /// Device name.
        name: String,
    },
    /// Issue a new token; the old one stays valid for the grace period.
    Rotate {
        /// Device name.
        name: String,
        /// How long the old token keeps working, e.g. `1h`, `0s` for none.
        #[arg(long, default_value = "1h")]
        grace: String,
    },
    /// Remove a device; its token stops working at once.
    Rm {
        /// Device name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum CertCommand {
    /// Write a self-signed development certificate and key (`cert.pem`, `key.pem`), for
    /// `ingot serve --tls-cert DIR/cert.pem --tls-key DIR/key.pem`.
    SelfSigned {
        /// Directory to write into (created if missing; files are never overwritten).
        #[arg(long, default_value = "ingot-tls", value_name = "DIR")]
        out: std::path::PathBuf,
        /// A DNS name or IP address the certificate is valid for (repeatable)
        /// [default: localhost, 127.0.0.1, ::1].
        #[arg(long = "host", value_name = "NAME")]
        hosts: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Create an API key in your tenant.
    Add {
        /// reader (query), writer (ingest for any device, query) or admin.
        #[arg(long, default_value = "reader")]
        role: String,
        /// When the key stops working: a duration from now (`90d`) or an RFC 3339 time.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List the tenant's API keys (ids and roles; secrets are never shown again).
    List,
    /// Revoke an API key by id.
    Rm {
        /// The key's id (not the key itself).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant and print its first admin key.
    Add {
        /// Tenant name.
        name: String,
    },
    /// Set how long a tenant's events are kept.
    Retention {
        /// Tenant name.
        name: String,
        /// A duration such as `30d`, or `default` for the server's `[store] retention`.
        retention: String,
    },
    /// List the tenants (system admin).
    List,
    /// Refuse every credential of a tenant until it is enabled again.
    Disable {
        /// Tenant name.
        name: String,
    },
    /// Accept a disabled tenant's credentials again.
    Enable {
        /// Tenant name.
        name: String,
    },
    /// Delete a tenant: refused at once, its data deleted in the background.
    Rm {
        /// Tenant name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum QueryCommand {
    /// List events, newest first.
    Events(client::EventsArgs),
    /// Aggregate a numeric field per time bucket, optionally grouped.
    Series(client::SeriesArgs),
}

/// Runs the command line; the process exits with the returned code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => run_serve(&args),
        Command::Sim(args) => ingot_sim::cli::main(*args),
        Command::Cert {
            command: CertCommand::SelfSigned { out, hosts },
        } => {
            let hosts = if hosts.is_empty() {
                cert::DEFAULT_HOSTS.map(String::from).into()
            } else {
                hosts
            };
            match cert::self_signed(&out, &hosts) {
                Ok((cert, key)) => {
                    println!(
                        "certificate: {}
private key: {}",
                        cert.display(),
                        key.display()
                    );
                    println!(
                        "valid for {}; clients trust it with e.g. `curl --cacert {}`",
                        hosts.join(", "),
                        cert.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("error: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::GenerateConfig => {
            print!("{}", config::EXAMPLE);
            ExitCode::SUCCESS
        }
        Command::Device { command, client } => run_client(async move {
            match command {
                DeviceCommand::Add { name, labels } => {
                    client::device_add(&client, &name, &labels).await
                }
                DeviceCommand::List => client::device_list(&client).await,
                DeviceCommand::Show { name } => client::device_show(&client, &name).await,
                DeviceCommand::Disable { name } => {
                    client::device_set_enabled(&client, &name, false).await
                }
                DeviceCommand::Enable { name } => {
                    client::device_set_enabled(&client, &name, true).await
                }
                DeviceCommand::Rotate { name, grace } => {
                    client::device_rotate(&client, &name, &grace).await
                }
                DeviceCommand::Rm { name } => client::device_rm(&client, &name).await,
            }
        }),
        Command::Key { command, client } => run_client(async move {
            match command {
                KeyCommand::Add { role, expires } => {
                    client::key_add(&client, &role, expires.as_deref()).await
                }
                KeyCommand::List => client::key_list(&client).await,
                KeyCommand::Rm { id } => client::key_rm(&client, &id).await,
            }
        }),
        Command::Query { command, client } => run_client(async move {
            match command {
                QueryCommand::Events(args) => client::query_events(&client, &args).await,
                QueryCommand::Series(args) => client::query_series(&client, &args).await,
            }
        }),
        Command::Tenant { command, client } => run_client(async move {
            match command {
                TenantCommand::Add { name } => client::tenant_add(&client, &name).await,
                TenantCommand::Retention { name, retention } => {
                    client::tenant_retention(&client, &name, &retention).await
                }
                TenantCommand::List => client::tenant_list(&client).await,
                TenantCommand::Disable { name } => {
                    client::tenant_set_disabled(&client, &name, true).await
                }
                TenantCommand::Enable { name } => {
                    client::tenant_set_disabled(&client, &name, false).await
                }
                TenantCommand::Rm { name } => client::tenant_rm(&client, &name).await,
            }
        }),
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ingot")
        .build()
}

fn run_client(work: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let result = runtime()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(work));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_serve(args: &ServeArgs) -> ExitCode {
    let config = match ServeConfig::load(args) {
        Ok(config) => config,
        Err(errors) => {
            eprint!("error: {errors}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format, &config.log_level);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        let running = serve::start(config.clone()).await?;
        println!("{}", serve::banner(&config, &running));
        serve::shutdown_signal().await;
        running.stop();
        tokio::select! {
            result = running.wait() => result,
            () = serve::shutdown_signal() => anyhow::bail!("second stop signal: exiting without finishing the drain"),
        }
    });
    // Blocking tasks (a stuck disk) must not keep the process alive past the drain.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
