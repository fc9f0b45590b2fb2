//! The `ingot` command: configuration, wiring and lifecycle of the server, and the admin
//! commands. `src/main.rs` of the `ingot` package only calls [`main`].
//!
//! This crate is the binary's body, so it uses `anyhow` for errors that end up printed to
//! the terminal; the library crates below it have typed errors.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

#[derive(Debug, Subcommand)]
enum DeviceCommand {
    /// Register a device and print its token (shown only once).
    Add {
        /// Device name: letters, digits and . _ : ~ @ -
        name: String,
    },
    /// Remove a device; its token stops working at once.
    Rm {
        /// Device name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Create an API key in your tenant.
    Add {
        /// reader (query), writer (ingest for any device, query) or admin.
        #[arg(long, default_value = "reader")]
        role: String,
    },
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
        Command::GenerateConfig => {
            print!("{}", config::EXAMPLE);
            ExitCode::SUCCESS
        }
        Command::Device { command, client } => run_client(async move {
            match command {
                DeviceCommand::Add { name } => client::device_add(&client, &name).await,
                DeviceCommand::Rm { name } => client::device_rm(&client, &name).await,
            }
        }),
        Command::Key { command, client } => run_client(async move {
            match command {
                KeyCommand::Add { role } => client::key_add(&client, &role).await,
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
