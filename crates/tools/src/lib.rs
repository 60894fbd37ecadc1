//! The client-side tools of cors-edge: `probe` and `loadtest`.
//!
//! Both work against any `http://` or `https://` URL, over HTTP/1.1 or HTTP/2 — a
//! cors-edge gateway, a production CDN, or the API itself — because their job is to show
//! what a browser-facing cache actually does with CORS, not what its config claims.
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
pub mod leak;
pub mod loadtest;
pub mod net;
pub mod probe;

mod cors;
mod error;
mod parse;
mod request;
mod target;

pub use error::ToolError;
