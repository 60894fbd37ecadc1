//! The load test's plan: everything workers need to build requests, resolved once
//! before the run (origins, paths, base headers, where to connect), and the request mix.

use std::path::Path;
use std::time::Duration;

use http::{HeaderValue, Uri};

use super::args::{Bounds, LoadtestArgs};
use crate::net::Endpoint;
use crate::request::{self, CorsShape, H1Template};
use crate::target::TargetUrl;
use crate::ToolError;

/// What preflights ask for: a non-simple method and two non-safelisted headers, the
/// shape of a typical JSON API call from a browser.
const PREFLIGHT_METHOD: &str = "PUT";
const PREFLIGHT_HEADERS: &str = "content-type,authorization";

#[derive(Debug)]
pub(crate) struct LoadPlan {
    pub url: String,
    /// Where connections go: one endpoint, or one per node of a cluster (several matching
    /// `--connect-to` rules); worker `i` connects to `endpoints[i % len]`.
    pub endpoints: Vec<Endpoint>,
    pub origins: Vec<HeaderValue>,
    pub paths: Vec<Uri>,
    /// Host plus the user's extra headers, copied into every request.
    pub base_headers: http::HeaderMap,
    /// The same, rendered once as HTTP/1.1 header lines.
    pub h1: H1Template,
    pub preflight_method: HeaderValue,
    pub preflight_headers: HeaderValue,
    pub preflight_share: f64,
    pub no_origin_share: f64,
    pub concurrency: usize,
    pub bounds: Bounds,
    pub rate: Option<f64>,
    pub timeout: Duration,
    /// The length of one point of the report's time series.
    pub interval: Duration,
}

impl LoadPlan {
    pub async fn build(args: &LoadtestArgs, bounds: Bounds) -> Result<Self, ToolError> {
        let target = TargetUrl::parse(&args.url)?;
        let origins = match &args.origins_file {
            Some(path) => read_origins(path)?,
            None => (1..=args.origins)
                .map(|i| {
                    HeaderValue::from_str(&format!("https://o{i}.loadtest.example"))
                        .map_err(|err| ToolError::Internal(err.to_string()))
                })
                .collect::<Result<_, _>>()?,
        };
        let paths = match (&args.path_list, args.paths) {
            (Some(path), _) => read_paths(path, &target)?,
            (None, Some(count)) => (1..=count)
                .map(|i| {
                    target
                        .joined_path(&format!("/p/{i}"))
                        .parse::<Uri>()
                        .map_err(|err| ToolError::Usage(format!("{}: {err}", args.url)))
                })
                .collect::<Result<_, _>>()?,
            (None, None) => vec![target
                .path_and_query()
                .parse::<Uri>()
                .map_err(|err| ToolError::Usage(format!("{}: {err}", args.url)))?],
        };

        let base_headers = request::base_headers(
            &target,
            &args.headers,
            "--header",
            "--origins, --origins-file or --no-origin-share",
        )?;
        let endpoints = args.connect.endpoints(&target).await?;
        Ok(LoadPlan {
            url: args.url.clone(),
            endpoints,
            origins,
            paths,
            h1: H1Template::new(&base_headers),
            base_headers,
            preflight_method: HeaderValue::from_static(PREFLIGHT_METHOD),
            preflight_headers: HeaderValue::from_static(PREFLIGHT_HEADERS),
            preflight_share: args.preflight_share,
            no_origin_share: args.no_origin_share,
            concurrency: args.concurrency,
            bounds,
            rate: args.rate,
            timeout: args.timeout,
            interval: series_interval(bounds),
        })
    }

    /// The endpoint worker `index` connects to.
    pub fn endpoint_of(&self, index: usize) -> &Endpoint {
        &self.endpoints[index % self.endpoints.len().max(1)]
    }

    /// The CORS part of a request of this shape from `origin`.
    pub fn cors_shape<'a>(&'a self, shape: Shape, origin: &'a HeaderValue) -> CorsShape<'a> {
        match shape {
            Shape::SimpleWithOrigin => CorsShape {
                origin: Some(origin),
                preflight: None,
            },
            Shape::SimpleWithoutOrigin => CorsShape {
                origin: None,
                preflight: None,
            },
            Shape::Preflight => CorsShape {
                origin: Some(origin),
                preflight: Some((&self.preflight_method, Some(&self.preflight_headers))),
            },
        }
    }

    /// Picks the kind of the next request from one uniform draw, so the shares hold
    /// exactly in expectation: [0, P) preflight, [P, P+S) no Origin, rest simple.
    pub fn pick_shape(&self, draw: f64) -> Shape {
        if draw < self.preflight_share {
            Shape::Preflight
        } else if draw < self.preflight_share + self.no_origin_share {
            Shape::SimpleWithoutOrigin
        } else {
            Shape::SimpleWithOrigin
        }
    }
}

/// Non-empty, non-comment lines of a list file, with their 1-based line numbers.
fn list_lines(path: &Path, what: &'static str) -> Result<Vec<(usize, String)>, ToolError> {
    let text = std::fs::read_to_string(path).map_err(|source| ToolError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    let lines: Vec<(usize, String)> = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim().to_string()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .collect();
    if lines.is_empty() {
        return Err(ToolError::EmptyFile {
            path: path.to_path_buf(),
            what,
        });
    }
    Ok(lines)
}

fn read_origins(path: &Path) -> Result<Vec<HeaderValue>, ToolError> {
    list_lines(path, "origin")?
        .into_iter()
        .map(|(line, origin)| {
            let invalid = |message: String| ToolError::InvalidLine {
                path: path.to_path_buf(),
                line,
                message,
            };
            // `null` is what browsers send from opaque origins (sandboxed frames, file:).
            if origin != "null" && !origin.contains("://") {
                return Err(invalid(format!(
                    "`{origin}` is not an origin (expected scheme://host[:port])"
                )));
            }
            HeaderValue::from_str(&origin)
                .map_err(|_| invalid(format!("`{origin}` is not a valid header value")))
        })
        .collect()
}

fn read_paths(path: &Path, target: &TargetUrl) -> Result<Vec<Uri>, ToolError> {
    list_lines(path, "path")?
        .into_iter()
        .map(|(line, entry)| {
            target
                .joined_path(&entry)
                .parse::<Uri>()
                .map_err(|err| ToolError::InvalidLine {
                    path: path.to_path_buf(),
                    line,
                    message: format!("`{entry}` is not a usable path: {err}"),
                })
        })
        .collect()
}

/// The three kinds of request the generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    SimpleWithOrigin,
    SimpleWithoutOrigin,
    Preflight,
}

/// Hands out request slots: a global count for `--requests`, the deadline for
/// `--duration`, and with `--rate` each slot's scheduled start.
/// cryptographic ones, and per-worker seeds make runs reproducible.
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1): 53 random bits, so 1.0 is never drawn and a share of 1.0
    /// always wins.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform index below `bound` (bound > 0); the modulo bias is negligible for the
    /// list sizes used here.
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }
}

/// About 100 points over a run of known length, 50ms at least; 250ms when only the
/// request count bounds the run.
fn series_interval(bounds: Bounds) -> Duration {
    match bounds.duration {
        Some(duration) => (duration / 100).max(Duration::from_millis(50)),
        None => Duration::from_millis(250),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shares_split_one_uniform_draw() {
        let mut args = LoadtestArgs::new("http://127.0.0.1:1/");
        args.preflight_share = 0.25;
        args.no_origin_share = 0.5;
        args.requests = Some(1);
        let bounds = Bounds::from_args(&args).expect("bounds");
        let plan = LoadPlan::build(&args, bounds).await.expect("plan");
        assert_eq!(plan.pick_shape(0.0), Shape::Preflight);
        assert_eq!(plan.pick_shape(0.2499), Shape::Preflight);
        assert_eq!(plan.pick_shape(0.25), Shape::SimpleWithoutOrigin);
        assert_eq!(plan.pick_shape(0.7499), Shape::SimpleWithoutOrigin);
        assert_eq!(plan.pick_shape(0.75), Shape::SimpleWithOrigin);
        assert_eq!(plan.interval, Duration::from_millis(250));
    }

    #[test]
    fn uniform_draws_stay_below_one() {
        let mut rng = SplitMix64::new(7);
        for _ in 0..10_000 {
            let draw = rng.next_f64();
            assert!((0.0..1.0).contains(&draw));
            assert!(rng.below(3) < 3);
        }
    }

    #[test]
    fn series_have_about_a_hundred_points() {
        let bounds = |duration| Bounds {
            duration,
            requests: None,
        };
        assert_eq!(
            series_interval(bounds(Some(Duration::from_secs(10)))),
            Duration::from_millis(100)
        );
        assert_eq!(
            series_interval(bounds(Some(Duration::from_secs(1)))),
            Duration::from_millis(50)
        );
    }
}
