//! The client-side tools of cors-edge: `probe` and `loadtest`.
//!
//! Both work against any plain-`http://` URL — a cors-edge gateway, another CDN's
//! loopback test instance, or the API itself — because their job is to show what a
//! browser-facing cache actually does with CORS, not what its config claims.
//!
//! The `cors-edge` binary embeds them as subcommands:
//!
//! ```text
//! #[derive(clap::Subcommand)]
//! enum Command {
//!     Loadtest(cors_edge_tools::loadtest::LoadtestArgs),
//!     Probe(cors_edge_tools::probe::ProbeArgs),
//! }
//! // ...
//! let code = match command {
//!     Command::Loadtest(args) => cors_edge_tools::loadtest::run(args).await,
//!     Command::Probe(args) => cors_edge_tools::probe::run(args).await,
//! }
//! .unwrap_or_else(|err| {
//!     eprintln!("error: {err}");
//!     err.exit_code()
//! });
//! std::process::exit(code);
//! ```
//!
//! `run` prints the report (text, or JSON with `--json`) on stdout and returns the
//! process exit code; `execute` returns the structured report without printing it.

pub mod exit_code;
pub mod loadtest;
pub mod probe;

mod client;
mod cors;
mod error;
mod parse;
mod target;

pub use error::ToolError;
