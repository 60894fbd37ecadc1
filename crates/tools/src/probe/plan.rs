//! The probe's plan: the validated arguments and the requests to send, as data.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::args::ProbeArgs;
use super::model::RequestKind;
use crate::request;
use crate::target::TargetUrl;
use crate::ToolError;

/// The validated arguments.
pub(crate) struct ProbePlan {
    pub target: TargetUrl,
    /// `Host` and `--send-header`s for the edge.
    pub base_headers: HeaderMap,
    /// `--direct`: the origin's URL and its base headers.
    pub direct: Option<(TargetUrl, HeaderMap)>,
    pub origins: Vec<String>,
    /// Normalized: the standard methods upper-cased, as browsers send them.
    pub method: String,
    /// Lower-cased, de-duplicated, in the order given.
    pub request_headers: Vec<String>,
    pub credentials: bool,
    pub timeout: Duration,
    /// The `cors-probe` query value of the warm-then-ask test's fresh cache key; `None`
    /// with `--no-cache-buster`. The same on the edge and the origin.
    pub nonce: Option<String>,
}

impl ProbePlan {
    pub fn from_args(args: &ProbeArgs) -> Result<Self, ToolError> {
        let usage = |message: String| ToolError::Usage(message);
        let target = TargetUrl::parse(&args.url)?;
        if args.origins.is_empty() {
            return Err(usage("give at least one --origin".into()));
        }
        let mut origins = Vec::new();
        for origin in &args.origins {
            let origin = origin.trim();
            if origin != "null" && !origin.contains("://") {
                return Err(usage(format!(
                    "--origin `{origin}` is not an origin (expected scheme://host[:port])"
                )));
            }
            if HeaderValue::from_str(origin).is_err() {
                return Err(usage(format!(
                    "--origin `{origin}` is not a valid header value"
                )));
            }
            if origins.iter().any(|seen| seen == origin) {
                return Err(usage(format!("--origin `{origin}` is given twice")));
            }
            origins.push(origin.to_string());
        }

        let method = normalize_method(&args.method);
        if Method::from_bytes(method.as_bytes()).is_err() {
            return Err(usage(format!(
                "--method `{}` is not an HTTP method",
                args.method
            )));
        }
        let mut request_headers: Vec<String> = Vec::new();
        for name in args.request_headers.iter().flat_map(|list| list.split(',')) {
            let name = name.trim().to_ascii_lowercase();
            if name.is_empty() {
                continue;
            }
            if HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(usage(format!("--header `{name}` is not a header name")));
            }
            if !request_headers.contains(&name) {
                request_headers.push(name);
            }
        }
        if args.timeout.is_zero() {
            return Err(usage("--timeout must be above 0".into()));
        }

        let hint = "--origin, --method, --header";
        let base_headers =
            request::base_headers(&target, &args.send_headers, "--send-header", hint)?;
        let direct = match &args.direct {
            Some(url) => {
                let direct = TargetUrl::parse(url)?;
                let headers =
                    request::base_headers(&direct, &args.send_headers, "--send-header", hint)?;
                Some((direct, headers))
            }
            None => None,
        };
        let nonce = (!args.no_cache_buster).then(|| {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos());
            format!("{nanos:x}{:x}", std::process::id())
        });
        Ok(ProbePlan {
            target,
            base_headers,
            direct,
            origins,
            method,
            request_headers,
            credentials: args.credentials,
            timeout: args.timeout,
            nonce,
        })
    }

    /// A method to ask for that differs from `--method`.
    pub fn other_method(&self) -> &'static str {
        if self.method == "DELETE" {
            "PATCH"
        } else {
            "DELETE"
        }
    }

    /// Headers to ask for that differ from `--header`: one more, unknown to the API.
    pub fn other_headers(&self) -> Vec<String> {
        let mut headers = self.request_headers.clone();
        headers.push("x-cors-probe".to_string());
        headers
    }

    /// The path and query a planned request uses on `target` (the edge or the origin).
    pub fn path_on(&self, target: &TargetUrl, fresh: bool) -> String {
        let base = target.path_and_query();
        match (&self.nonce, fresh) {
            (Some(nonce), true) => {
                let separator = if base.contains('?') { '&' } else { '?' };
                format!("{base}{separator}cors-probe={nonce}")
            }
            _ => base,
        }
    }
}

/// Browsers upper-case these six methods and send any other one as written.
pub(crate) fn normalize_method(method: &str) -> String {
    let upper = method.trim().to_ascii_uppercase();
    if ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"].contains(&upper.as_str()) {
        upper
    } else {
        method.trim().to_string()
    }
}

/// What one request should look like.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub kind: RequestKind,
    pub try_number: u8,
    /// On the warm-then-ask test's fresh cache key.
    pub fresh: bool,
    pub origin: Option<String>,
    /// For preflights: the method and headers asked for.
    pub preflight: Option<(String, Vec<String>)>,
}

/// Every request, in the order sent.
pub(crate) fn planned_requests(plan: &ProbePlan) -> Vec<Planned> {
    let path = false; // the URL's own path; `true` is the fresh cache key
    let preflight = Some((plan.method.clone(), plan.request_headers.clone()));
    let mut requests = Vec::new();
    for origin in &plan.origins {
        for (kind, preflight) in [
            (RequestKind::Simple, None),
            (RequestKind::Preflight, preflight.clone()),
        ] {
            for try_number in 1..=2 {
                requests.push(Planned {
                    kind,
                    try_number,
                    fresh: path,
                    origin: Some(origin.clone()),
                    preflight: preflight.clone(),
                });
            }
        }
    }
    for try_number in 1..=2 {
        requests.push(Planned {
            kind: RequestKind::NoOrigin,
            try_number,
            fresh: path,
            origin: None,
            preflight: None,
        });
    }
    let first = plan.origins.first().cloned();
    requests.push(Planned {
        kind: RequestKind::PreflightOtherMethod,
        try_number: 1,
        fresh: path,
        origin: first.clone(),
        preflight: Some((
            plan.other_method().to_string(),
            plan.request_headers.clone(),
        )),
    });
    requests.push(Planned {
        kind: RequestKind::PreflightOtherHeaders,
        try_number: 1,
        fresh: path,
        origin: first,
        preflight: Some((plan.method.clone(), plan.other_headers())),
    });
    if plan.origins.len() >= 2 {
        for (warm, ask, preflight) in [
            (RequestKind::WarmSimple, RequestKind::AskSimple, None),
            (
                RequestKind::WarmPreflight,
                RequestKind::AskPreflight,
                preflight.clone(),
            ),
        ] {
            for (index, origin) in plan.origins.iter().enumerate() {
                requests.push(Planned {
                    kind: if index == 0 { warm } else { ask },
                    try_number: 1,
                    fresh: true,
                    origin: Some(origin.clone()),
                    preflight: preflight.clone(),
                });
            }
        }
    }
    requests
}

/// Sends every planned request in order, each on a fresh connection so a connection's
#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit_code;

    #[test]
    fn standard_methods_are_upper_cased_like_browsers_do() {
        assert_eq!(normalize_method("put"), "PUT");
        assert_eq!(normalize_method("Delete"), "DELETE");
        assert_eq!(normalize_method("patch"), "patch");
    }

    #[test]
    fn arguments_are_validated_as_usage_errors() {
        let ok = ProbeArgs::new("http://127.0.0.1:1/", &["https://a.example"]);
        assert!(ProbePlan::from_args(&ok).is_ok());
        for bad in [
            ProbeArgs::new("http://127.0.0.1:1/", &[]),
            ProbeArgs::new("http://127.0.0.1:1/", &["a.example"]),
            ProbeArgs::new(
                "http://127.0.0.1:1/",
                &["https://a.example", "https://a.example"],
            ),
            ProbeArgs::new("ftp://127.0.0.1:1/", &["https://a.example"]),
        ] {
            let err = ProbePlan::from_args(&bad).err().expect("invalid");
            assert_eq!(err.exit_code(), exit_code::USAGE, "{bad:?}");
        }
    }

    #[test]
    fn requested_headers_are_split_lowercased_and_deduplicated() {
        let mut args = ProbeArgs::new("http://127.0.0.1:1/", &["https://a.example"]);
        args.request_headers = vec!["Authorization, content-type".into(), "authorization".into()];
        let plan = ProbePlan::from_args(&args).expect("valid");
        assert_eq!(plan.request_headers, ["authorization", "content-type"]);
        assert_eq!(
            plan.other_headers(),
            ["authorization", "content-type", "x-cors-probe"]
        );
        assert_eq!(plan.other_method(), "DELETE");
    }

    #[test]
    fn the_plan_warms_with_the_first_origin_and_asks_with_the_others() {
        let args = ProbeArgs::new(
            "http://127.0.0.1:1/x",
            &["https://a.example", "https://b.example"],
        );
        let plan = ProbePlan::from_args(&args).expect("valid");
        let requests = planned_requests(&plan);
        // 2 origins × (2 GET + 2 preflight) + 2 without Origin + 2 variants + 2 × 2 warm/ask.
        assert_eq!(requests.len(), 8 + 2 + 2 + 4);
        let warm = requests
            .iter()
            .position(|r| r.kind == RequestKind::WarmSimple)
            .expect("warm-up");
        assert_eq!(requests[warm].origin.as_deref(), Some("https://a.example"));
        assert_eq!(requests[warm + 1].kind, RequestKind::AskSimple);
        assert_eq!(
            requests[warm + 1].origin.as_deref(),
            Some("https://b.example")
        );
        assert!(requests[warm].fresh && !requests[0].fresh);
        assert!(plan
            .path_on(&plan.target, true)
            .starts_with("/x?cors-probe="));
        assert_eq!(plan.path_on(&plan.target, false), "/x");
    }

    #[test]
    fn the_origin_gets_the_same_fresh_key_under_its_own_path() {
        let mut args = ProbeArgs::new("https://edge.example/api?v=1", &["https://a.example"]);
        args.direct = Some("http://127.0.0.1:9/origin-api".into());
        let plan = ProbePlan::from_args(&args).expect("valid");
        let (direct, headers) = plan.direct.as_ref().expect("direct");
        let edge_path = plan.path_on(&plan.target, true);
        let origin_path = plan.path_on(direct, true);
        let nonce = edge_path.rsplit('=').next().expect("nonce");
        assert!(edge_path.starts_with("/api?v=1&cors-probe="));
        assert_eq!(origin_path, format!("/origin-api?cors-probe={nonce}"));
        assert_eq!(headers.get("host").expect("host"), "127.0.0.1:9");

        args.no_cache_buster = true;
        let plan = ProbePlan::from_args(&args).expect("valid");
        assert_eq!(plan.path_on(&plan.target, true), "/api?v=1");
    }
}
