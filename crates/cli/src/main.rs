//! The `cors-edge` command: run the gateway, check a config, start the demo, and the client
//! tools (purge, inspect, probe, loadtest).

mod admin_client;
mod demo;
mod inspect;
mod purge;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cors-edge",
    version,
    about = "A caching edge gateway that gets CORS right"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the gateway.
    Run {
        #[arg(short = 'c', long = "config", default_value = "config/gateway.yaml")]
        config: PathBuf,
        /// Once every listener accepts, write the bound addresses (JSON with the pid) to this
        /// file: how a supervisor or a test learns the ports of listeners configured on port 0.
        #[arg(long = "ready-file")]
        ready_file: Option<PathBuf>,
    },
    /// Validate a config and print a summary; exit 1 on errors (like `nginx -t`).
    Check {
        #[arg(short = 'c', long = "config", default_value = "config/gateway.yaml")]
        config: PathBuf,
    },
    /// Start a demo API and a gateway in front of it on loopback, and print curl lines to try.
    Demo(demo::DemoArgs),
    /// Purge cached entries through the admin API.
    Purge(purge::PurgeArgs),
    /// List what the cache holds for a URL, an origin, a host, a prefix or a tag.
    Inspect(inspect::InspectArgs),
    /// The CDN-and-CORS debugging checklist, automated against any URL.
    Probe(cors_edge_tools::probe::ProbeArgs),
    /// Load generator for cache behaviour, with cross-origin leak detection.
    Loadtest(cors_edge_tools::loadtest::LoadtestArgs),
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn run_gateway(options: cors_edge_gateway::RunOptions) -> ExitCode {
    match cors_edge_gateway::run(options) {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("cors-edge: {e}");
            ExitCode::from(1)
        }
    }
}

fn block_on<F: std::future::Future<Output = i32>>(future: F) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => exit(runtime.block_on(future)),
        Err(e) => {
            eprintln!("cors-edge: cannot start the async runtime: {e}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config, ready_file } => run_gateway(cors_edge_gateway::RunOptions {
            config_path: config,
            demo_upstream: None,
            reservations: Default::default(),
            ready_file,
        }),
        Command::Check { config } => check(&config),
        Command::Demo(args) => match demo::prepare(&args) {
            Ok(options) => run_gateway(options),
            Err(e) => {
                eprintln!("cors-edge demo: {e}");
                ExitCode::from(1)
            }
        },
        Command::Purge(args) => block_on(purge::run(args)),
        Command::Inspect(args) => block_on(inspect::run(args)),
        Command::Probe(args) => block_on(async move {
            cors_edge_tools::probe::run(args).await.unwrap_or_else(|e| {
                eprintln!("cors-edge probe: {e}");
                e.exit_code()
            })
        }),
        Command::Loadtest(args) => block_on(async move {
            cors_edge_tools::loadtest::run(args)
                .await
                .unwrap_or_else(|e| {
                    eprintln!("cors-edge loadtest: {e}");
                    e.exit_code()
                })
        }),
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    match cors_edge_core::config::load_file(path) {
        Ok(config) => {
            println!("{}: ok", path.display());
            println!("{}", config.summary());
            let mut warnings = Vec::new();
            if let Some(tls) = &config.tls {
                for file in [&tls.cert, &tls.key] {
                    if !file.exists() {
                        warnings.push(format!("tls file {} does not exist", file.display()));
                    }
                }
            }
            let token_set =
                std::env::var(&config.admin.token_env).is_ok_and(|t| !t.trim().is_empty());
            if !config.admin_is_loopback() && !token_set {
                eprintln!(
                    "{}: admin.listen {} is off loopback and ${} is not set: `run` would refuse to start",
                    path.display(),
                    config.admin.listen,
                    config.admin.token_env
                );
                return ExitCode::from(1);
            }
            for warning in warnings {
                eprintln!("{}: {warning}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::from(1)
        }
    }
}
