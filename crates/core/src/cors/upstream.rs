//! Upstream mode: the API makes its own CORS decisions and the gateway only has to cache them
//! without ever serving one origin's answer to another. This inspects a response's CORS headers
//! to decide how widely it may be shared and to flag upstream mistakes for the
//! `unsafe_upstream_responses_total{reason}` metric.
//!
//! The storage rule (SPEC, "Origin-aware keys") deliberately does not trust the upstream: a
//! response is shared across origins only when its `Access-Control-Allow-Origin` is exactly `*`
//! and its `Vary` does not name `Origin`. Everything else, including a response with no ACAO at
//! all, is stored per request origin, because an upstream that answers a disallowed origin
//! without ACAO and forgets `Vary: Origin` would otherwise have that answer served to an allowed
//! origin (and the other way round).

use crate::header_list::trim_ows;

/// What the upstream said in `Access-Control-Allow-Origin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllowOrigin {
    /// No ACAO field.
    Absent,
    /// Exactly `*`.
    Any,
    /// One value other than `*`: normally an origin, possibly garbage. Either way it is specific
    /// to whoever it was computed for.
    Named,
    /// Several field lines, or one line holding a comma- or space-separated list. Browsers reject
    /// this, so the response is useless for CORS, but it is still stored per origin.
    Multiple,
}

/// A mistake in an upstream's CORS response that would be dangerous behind a cache that trusted
/// it. `as_str` is a bounded metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnsafeReason {
    /// ACAO names an origin but `Vary` lacks `Origin`: a naive cache would serve it to others.
    AcaoWithoutVary,
    /// `Access-Control-Allow-Origin: *` with `Access-Control-Allow-Credentials: true`, which
    /// browsers reject for credentialed requests.
    WildcardWithCredentials,
    /// ACAO names an origin other than the request's (often a response cached for one origin by
    /// something upstream of us and replayed for another).
    AcaoOtherOrigin,
    /// More than one ACAO value.
    MultipleAcao,
    /// ACAO names an origin although the request carried no `Origin`.
    AcaoWithoutRequestOrigin,
}

impl UnsafeReason {
    /// Every reason, for registering `unsafe_upstream_responses_total{reason}` at 0.
    pub const ALL: [UnsafeReason; 5] = [
        UnsafeReason::AcaoWithoutVary,
        UnsafeReason::WildcardWithCredentials,
        UnsafeReason::AcaoOtherOrigin,
        UnsafeReason::MultipleAcao,
        UnsafeReason::AcaoWithoutRequestOrigin,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            UnsafeReason::AcaoWithoutVary => "acao_without_vary",
            UnsafeReason::WildcardWithCredentials => "wildcard_with_credentials",
            UnsafeReason::AcaoOtherOrigin => "acao_other_origin",
            UnsafeReason::MultipleAcao => "multiple_acao",
            UnsafeReason::AcaoWithoutRequestOrigin => "acao_without_request_origin",
        }
    }
}

/// How the gateway may cache an upstream response, CORS-wise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamCors {
    /// `true` only for `ACAO: *` without `Vary: Origin`: one stored copy serves every origin and
    /// requests without `Origin`. Otherwise the response is a variant of the request's `Origin`
    /// (compared byte for byte, with "no Origin" a variant of its own) and the gateway adds
    /// `Origin` to the `Vary` it sends downstream.
    pub shared_across_origins: bool,
    pub allow_origin: AllowOrigin,
    /// `Access-Control-Allow-Credentials` is exactly `true` (Fetch compares it case-sensitively).
    pub allows_credentials: bool,
    /// Every problem found, in a fixed order, without duplicates; empty for a correct response.
    pub unsafe_reasons: Vec<UnsafeReason>,
}

impl UpstreamCors {
    /// The complement of `shared_across_origins`, for call sites that read better this way.
    pub fn stored_per_origin(&self) -> bool {
        !self.shared_across_origins
    }
}

/// Inspects an upstream response's CORS headers.
///
/// - `request_origin`: the request's `Origin` value, if any (as sent, since that is what an
///   upstream echoes and what the browser compares byte for byte).
/// - `acao`: every `Access-Control-Allow-Origin` field line, in order.
/// - `acac`: the `Access-Control-Allow-Credentials` value, if any.
/// - `vary_names_origin`: the response's `Vary` names `Origin` or is `*`
///   (see [`crate::vary::names_origin`]).
pub fn inspect_upstream_response(
    request_origin: Option<&[u8]>,
    acao: &[&[u8]],
    acac: Option<&[u8]>,
    vary_names_origin: bool,
) -> UpstreamCors {
    let allow_origin = classify_allow_origin(acao);
    let allows_credentials = acac.is_some_and(|value| trim_ows(value) == b"true");
    let mut unsafe_reasons = Vec::new();
    match allow_origin {
        AllowOrigin::Absent => {}
        AllowOrigin::Any => {
            if allows_credentials {
                unsafe_reasons.push(UnsafeReason::WildcardWithCredentials);
            }
        }
        AllowOrigin::Named => {
            if !vary_names_origin {
                unsafe_reasons.push(UnsafeReason::AcaoWithoutVary);
            }
            // `Named` means exactly one field line.
            let named = acao.first().map(|value| trim_ows(value));
            match request_origin {
                None => unsafe_reasons.push(UnsafeReason::AcaoWithoutRequestOrigin),
                Some(origin) if Some(trim_ows(origin)) != named => {
                    unsafe_reasons.push(UnsafeReason::AcaoOtherOrigin);
                }
                Some(_) => {}
            }
        }
        AllowOrigin::Multiple => {
            if !vary_names_origin {
                unsafe_reasons.push(UnsafeReason::AcaoWithoutVary);
            }
            unsafe_reasons.push(UnsafeReason::MultipleAcao);
        }
    }
    UpstreamCors {
        shared_across_origins: shares(allow_origin, vary_names_origin),
        allow_origin,
        allows_credentials,
        unsafe_reasons,
    }
}

/// A response's CORS facts from its field lines, the one place they are worked out: for the
/// response on its way from the upstream, and for a stored response found on a hit.
pub fn upstream_response_facts<'a, V>(
    request_origin: Option<&[u8]>,
    acao: &[&[u8]],
    acac: Option<&[u8]>,
    vary: V,
) -> UpstreamCors
where
    V: IntoIterator<Item = &'a [u8]>,
{
    let varies = crate::vary::names_origin(&crate::vary::parse_vary(vary));
    inspect_upstream_response(request_origin, acao, acac, varies)
}

/// The sharing rule: one stored copy serves every origin only for `ACAO: *` whose `Vary` does
/// not name `Origin`.
fn shares(allow_origin: AllowOrigin, vary_names_origin: bool) -> bool {
    allow_origin == AllowOrigin::Any && !vary_names_origin
}

/// Whether one stored copy of a response with these field lines serves every origin (upstream
/// mode), without working out the rest of its CORS facts: `Vary` is parsed only for `ACAO: *`,
/// so the per-origin answers most hits are cost one look at their ACAO.
pub fn shared_across_origins<'a, V>(acao: &[&[u8]], vary: V) -> bool
where
    V: IntoIterator<Item = &'a [u8]>,
{
    let allow_origin = classify_allow_origin(acao);
    allow_origin == AllowOrigin::Any
        && shares(
            allow_origin,
            crate::vary::names_origin(&crate::vary::parse_vary(vary)),
        )
}

/// [`shared_across_origins`] for a response whose `Vary` is already parsed.
pub fn shared_across_origins_given(acao: &[&[u8]], vary: &crate::vary::VaryFields) -> bool {
    shares(classify_allow_origin(acao), crate::vary::names_origin(vary))
}

impl AllowOrigin {
    /// What every `Access-Control-Allow-Origin` field line of a response says, together.
    pub fn of(acao: &[&[u8]]) -> AllowOrigin {
        classify_allow_origin(acao)
    }
}

fn classify_allow_origin(acao: &[&[u8]]) -> AllowOrigin {
    match acao {
        [] => AllowOrigin::Absent,
        [value] => {
            let value = trim_ows(value);
            if value == b"*" {
                AllowOrigin::Any
            } else if value
                .iter()
                .any(|&byte| matches!(byte, b',' | b' ' | b'\t'))
            {
                AllowOrigin::Multiple
            } else {
                AllowOrigin::Named
            }
        }
        _ => AllowOrigin::Multiple,
    }
}
