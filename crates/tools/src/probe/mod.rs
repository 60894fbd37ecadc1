//! `cors-edge probe`: the CDN-and-CORS debugging checklist, automated.
//!
//! It works against any `http://` or `https://` URL (HTTP/1.1 or HTTP/2 by ALPN; see
//! [`crate::net::ConnectArgs`]) and only looks at what comes back, so it can judge
//! cors-edge, a production CDN, or an API with no cache at all.
//!
//! The module is laid out as the run goes: [`ProbeArgs`] (arguments), `plan` (the
//! requests as data), `io` (the one place that sends them), `checks` (pure functions over
//! the recorded observations), `model` (the report) and `text` (its rendering; JSON is
//! the model serialized).
//!
//! # What it sends, in order
//!
//! 1. For each `--origin`, twice (the second try shows what a cache does with the
//!    first): a simple `GET` with `Origin`, then a preflight `OPTIONS` with `Origin`,
//!    `Access-Control-Request-Method` (`--method`) and, when `--header` is given,
//!    `Access-Control-Request-Headers`.
//! 2. A `GET` without `Origin`, twice: after the origins warmed the cache, this is the
//!    request that receives a wrongly shared origin-specific answer.
//! 3. Two preflights from the first origin that differ from its first one only in the
//!    requested method, or only in the requested headers, to see whether the answer
//!    depends on them.
//! 4. The classic: on a fresh cache key (a unique `cors-probe` query parameter unless
//!    `--no-cache-buster`), the first origin warms a `GET` and a preflight, then every
//!    other origin asks for the same. A cache that ignores `Vary: Origin` hands the
//!    first origin's `Access-Control-Allow-Origin` to the others.
//!
//! # How the checks decide
//!
//! Each check has a stable id (see [`check_id`]) and a verdict: FAIL is what breaks
//! browsers or leaks across origins, WARN what is risky or inconclusive, INFO is
//! observation. The preflight `Vary` check is deliberately a WARN and only fires on
//! evidence: when changing the requested method (or headers) changed the answer, the
//! answer depends on it and `Vary` must list it; when the answer stayed the same it may
//! be static (no `Vary` needed) or a cache may have collapsed the two, which only a
//! probe of the API itself can tell apart.
//!
//! # `--direct`: edge versus origin
//!
//! With `--direct ORIGIN_URL` every request is also sent to the origin (same origins,
//! same preflights, the same fresh cache key), after all the edge's requests. The report
//! lists each field the edge changed (added, stripped, changed) beside the origin's value,
//! and two more checks judge it: `origin-forwarded` (the edge's answers follow the
//! origin's answers per `Origin`, so `Origin` reaches the origin) and `edge-rewrites-cors`
//! (the edge keeps the origin's ACAO and `Vary: Origin`, or rewrites them correctly).

mod args;
mod checks;
mod io;
mod model;
mod plan;
mod text;

pub use args::ProbeArgs;
pub use model::{
    check_id, Change, Check, DirectComparison, Exchange, FieldDifference, ProbeReport, RequestKind,
    SeenHeaders, Verdict,
};

use checks::Checklist;
use plan::{planned_requests, ProbePlan};

use crate::ToolError;

/// Runs the probe, prints the report on stdout (text, or JSON with `--json`) and
/// returns the exit code: [`exit_code::FAILED`] when any check failed.
pub async fn run(args: ProbeArgs) -> Result<i32, ToolError> {
    run_to(args, &mut std::io::stdout()).await
}

/// [`run`], writing the report to `out` instead of stdout.
pub async fn run_to(args: ProbeArgs, out: &mut impl std::io::Write) -> Result<i32, ToolError> {
    let report = execute(&args).await?;
    let text = if args.json {
        format!("{}\n", report.to_json())
    } else {
        report.render_text()
    };
    crate::error::write_report(out, &text)?;
    Ok(report.exit_code())
}

/// Runs the probe and returns its report without printing anything.
pub async fn execute(args: &ProbeArgs) -> Result<ProbeReport, ToolError> {
    let plan = ProbePlan::from_args(args)?;
    let endpoint = args.connect.endpoint(&plan.target).await?;
    let direct_endpoint = match &plan.direct {
        Some((target, _)) => Some(args.connect.endpoint(target).await?),
        None => None,
    };
    let planned = planned_requests(&plan);
    let (observed, connection) =
        io::send_all(&plan, &planned, &plan.target, &plan.base_headers, &endpoint).await;
    let direct = match (&plan.direct, &direct_endpoint) {
        (Some((target, headers)), Some(endpoint)) => {
            Some(io::send_all(&plan, &planned, target, headers, endpoint).await)
        }
        _ => None,
    };
    let checks = Checklist {
        plan: &plan,
        observed: &observed,
        direct: direct.as_ref().map(|(seen, _)| seen.as_slice()),
    }
    .run();
    let direct = match (direct, &args.direct) {
        (Some((seen, connection)), Some(url)) => Some(DirectComparison {
            url: url.clone(),
            connection,
            differences: checks::differences(&observed, &seen),
            exchanges: seen.into_iter().map(|seen| seen.exchange).collect(),
        }),
        _ => None,
    };
    let failed = checks
        .iter()
        .filter(|check| check.verdict == Verdict::Fail)
        .count();
    let warnings = checks
        .iter()
        .filter(|check| check.verdict == Verdict::Warn)
        .count();
    let overall = if failed > 0 {
        Verdict::Fail
    } else if warnings > 0 {
        Verdict::Warn
    } else {
        Verdict::Pass
    };
    Ok(ProbeReport {
        url: args.url.clone(),
        origins: plan.origins.clone(),
        method: plan.method.clone(),
        request_headers: plan.request_headers.clone(),
        credentials: plan.credentials,
        connection,
        exchanges: observed.into_iter().map(|seen| seen.exchange).collect(),
        direct,
        checks,
        overall,
        failed,
        warnings,
    })
}
