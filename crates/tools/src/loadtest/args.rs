//! The command line of `cors-edge loadtest`, and the run's bounds.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use http::{HeaderName, HeaderValue};

use crate::net::ConnectArgs;
use crate::parse::{parse_duration, parse_header_line, parse_rate, parse_share};
use crate::request;
use crate::ToolError;

/// The run length used when neither `--duration` nor `--requests` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// Arguments of `cors-edge loadtest`.
#[derive(Debug, Clone, Args)]
pub struct LoadtestArgs {
    /// Target URL, http:// or https://. Generated and listed paths are appended to its path.
    #[arg(value_name = "URL")]
    pub url: String,

    /// Number of origins, generated as https://o{i}.loadtest.example (i from 1).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub origins: usize,

    /// Read the origins from FILE, one per line (blank lines and # comments skipped).
    #[arg(long, value_name = "FILE", conflicts_with = "origins")]
    pub origins_file: Option<PathBuf>,

    /// Number of paths, generated as /p/{i} (i from 1) under the URL's path.
    /// Without --paths or --path-list every request goes to the URL's own path.
    #[arg(long, value_name = "M")]
    pub paths: Option<usize>,

    /// Read the paths from FILE, one per line, each appended to the URL's path.
    #[arg(long, value_name = "FILE", conflicts_with = "paths")]
    pub path_list: Option<PathBuf>,

    /// Share of requests that are CORS preflights, 0.0–1.0: OPTIONS with Origin,
    /// Access-Control-Request-Method: PUT and
    /// Access-Control-Request-Headers: content-type,authorization.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_share)]
    pub preflight_share: f64,

    /// Share of requests sent as GET without Origin, 0.0–1.0. The rest are GETs with
    /// Origin. Preflight and no-Origin shares together may not exceed 1.0.
    #[arg(long, value_name = "S", default_value_t = 0.0, value_parser = parse_share)]
    pub no_origin_share: f64,

    /// Number of keep-alive connections, each driven by its own worker.
    #[arg(long, value_name = "C", default_value_t = 32)]
    pub concurrency: usize,

    /// Stop after this long (500ms, 10s, 2m, …). Defaults to 10s when --requests is not
    /// given. 0 removes the time limit, and then --requests is required.
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Stop after exactly N requests (or at --duration, whichever comes first).
    #[arg(long, value_name = "N")]
    pub requests: Option<u64>,

    /// Open loop: schedule R requests per second at fixed intervals whatever the
    /// responses do, and measure latency from each request's scheduled start (so a
    /// stalled server shows up in the percentiles instead of being hidden).
    #[arg(long, value_name = "R", value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Extra request header, 'Name: value' (repeatable). A Host header given here
    /// replaces the URL's host, to reach a host-matched route.
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = parse_header_line)]
    pub headers: Vec<(HeaderName, HeaderValue)>,

    /// Count a request as an error (and reconnect) when its response has not fully
    /// arrived after this long.
    #[arg(long, value_name = "D", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Print only the final report, as JSON on stdout; no progress output.
    #[arg(long)]
    pub json: bool,

    /// Also write the report as a self-contained HTML page (charts over time, latency
    /// histogram, status mix; no network needed to view it).
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

impl LoadtestArgs {
    /// Arguments for `url` with every option at its command-line default.
    pub fn new(url: impl Into<String>) -> Self {
        LoadtestArgs {
            url: url.into(),
            origins: 8,
            origins_file: None,
            paths: None,
            path_list: None,
            preflight_share: 0.0,
            no_origin_share: 0.0,
            concurrency: 32,
            duration: None,
            requests: None,
            rate: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(5),
            json: false,
            report: None,
            connect: ConnectArgs::default(),
        }
    }
}

/// When the run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub duration: Option<Duration>,
    pub requests: Option<u64>,
}

impl Bounds {
    /// Checks everything about the arguments that clap cannot (or that a caller who built
    /// the struct by hand may have skipped); every problem is a usage error.
    pub fn from_args(args: &LoadtestArgs) -> Result<Self, ToolError> {
        let usage = |message: String| Err(ToolError::Usage(message));
        if args.concurrency == 0 {
            return usage("--concurrency must be at least 1".into());
        }
        if args.requests == Some(0) {
            return usage("--requests must be at least 1".into());
        }
        if args.origins_file.is_none() && args.origins == 0 {
            return usage(
                "--origins must be at least 1 (use --no-origin-share 1.0 for traffic without Origin)"
                    .into(),
            );
        }
        if args.paths == Some(0) {
            return usage("--paths must be at least 1".into());
        }
        for (flag, share) in [
            ("--preflight-share", args.preflight_share),
            ("--no-origin-share", args.no_origin_share),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return usage(format!("{flag} must be between 0.0 and 1.0, got {share}"));
            }
        }
        if args.preflight_share + args.no_origin_share > 1.0 + f64::EPSILON {
            return usage(format!(
                "--preflight-share ({}) and --no-origin-share ({}) add up to more than 1.0",
                args.preflight_share, args.no_origin_share
            ));
        }
        if let Some(rate) = args.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return usage(format!("--rate must be above 0, got {rate}"));
            }
        }
        if args.timeout.is_zero() {
            return usage("--timeout must be above 0".into());
        }
        if let Some((name, _)) = args
            .headers
            .iter()
            .find(|(name, _)| request::is_reserved(name))
        {
            return usage(format!(
                "--header {name}: the load test sets this header itself (use --origins, --origins-file or --no-origin-share)"
            ));
        }
        let duration = match (args.duration, args.requests) {
            (None, None) => Some(DEFAULT_DURATION),
            (Some(limit), _) if limit.is_zero() => None,
            (limit, _) => limit,
        };
        if duration.is_none() && args.requests.is_none() {
            return usage(
                "the run would be unbounded: --duration 0 needs --requests N to stop".into(),
            );
        }
        Ok(Bounds {
            duration,
            requests: args.requests,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit_code;

    #[test]
    fn bounds_default_to_ten_seconds_and_refuse_unbounded_runs() {
        let args = LoadtestArgs::new("http://127.0.0.1:1/");
        let bounds = Bounds::from_args(&args).expect("valid");
        assert_eq!(bounds.duration, Some(DEFAULT_DURATION));
        assert_eq!(bounds.requests, None);

        let mut only_requests = args.clone();
        only_requests.requests = Some(100);
        let bounds = Bounds::from_args(&only_requests).expect("valid");
        assert_eq!(bounds.duration, None);
        assert_eq!(bounds.requests, Some(100));

        let mut unbounded = args.clone();
        unbounded.duration = Some(Duration::ZERO);
        let err = Bounds::from_args(&unbounded).expect_err("unbounded");
        assert_eq!(err.exit_code(), exit_code::USAGE);

        let mut too_much = args;
        too_much.preflight_share = 0.7;
        too_much.no_origin_share = 0.5;
        assert_eq!(
            Bounds::from_args(&too_much)
                .expect_err("shares")
                .exit_code(),
            exit_code::USAGE
        );
    }
}
