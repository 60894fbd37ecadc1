//! The command line of `cors-edge probe`.

use std::time::Duration;

use clap::Args;
use http::{HeaderName, HeaderValue};

use crate::net::ConnectArgs;
use crate::parse::{parse_duration, parse_header_line};

/// Arguments of `cors-edge probe`.
#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// URL to probe: http:// or https://, the edge (CDN) in front of the API.
    #[arg(value_name = "URL")]
    pub url: String,

    /// Origin to send, as scheme://host or scheme://host:port (repeatable; give two or more to
    /// test whether one origin receives another's cached answer).
    #[arg(long = "origin", value_name = "ORIGIN", required = true)]
    pub origins: Vec<String>,

    /// Method the preflights ask for (Access-Control-Request-Method).
    #[arg(long, value_name = "METHOD", default_value = "PUT")]
    pub method: String,

    /// Header the preflights ask for (Access-Control-Request-Headers); repeatable or
    /// comma-separated, e.g. --header authorization --header content-type.
    #[arg(long = "header", value_name = "NAME")]
    pub request_headers: Vec<String>,

    /// Check for credentialed requests (cookies, HTTP auth): ACAO must then name the
    /// origin, never `*`, and Access-Control-Allow-Credentials must be true.
    #[arg(long)]
    pub credentials: bool,

    /// Extra header sent with every request, 'Name: value' (repeatable). A Host header
    /// given here replaces the URL's host.
    #[arg(long = "send-header", value_name = "NAME: VALUE", value_parser = parse_header_line)]
    pub send_headers: Vec<(HeaderName, HeaderValue)>,

    /// Give up on a request after this long.
    #[arg(long, value_name = "D", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Run the warm-then-ask test on the URL as given instead of on a fresh cache key
    /// (a unique `cors-probe` query parameter), for servers that reject unknown
    /// parameters.
    #[arg(long)]
    pub no_cache_buster: bool,

    /// The origin server's own URL (bypassing the CDN): every request is sent there
    /// too, and the report shows what the edge changed (Origin forwarded? CORS headers,
    /// Vary, Cache-Control rewritten, fields added or stripped).
    #[arg(long, value_name = "ORIGIN_URL")]
    pub direct: Option<String>,

    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

impl ProbeArgs {
    /// Arguments for `url` and `origins` with every option at its command-line default.
    pub fn new(url: impl Into<String>, origins: &[&str]) -> Self {
        ProbeArgs {
            url: url.into(),
            origins: origins.iter().map(|origin| origin.to_string()).collect(),
            method: "PUT".to_string(),
            request_headers: Vec::new(),
            credentials: false,
            send_headers: Vec::new(),
            timeout: Duration::from_secs(10),
            no_cache_buster: false,
            direct: None,
            json: false,
            connect: ConnectArgs::default(),
        }
    }
}
