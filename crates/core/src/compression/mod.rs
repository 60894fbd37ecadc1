//! Compression at the edge: which content coding a request gets (the one choice the cache
//! variance, the request to the upstream and the compressor all use), whether a response may be
//! compressed, and what compressing changes in its header.
//!
//! The coding is chosen once, from the request's `Accept-Encoding`, among the codings the
//! gateway produces: browsers send many spellings of the same wish (`gzip, deflate, br, zstd`,
//! `br;q=1.0, gzip;q=0.8, *;q=0.1`), and keying the cache on the raw value would store one copy
//! per spelling. Keyed on the choice, they share one variant per coding, as Fastly does.

use crate::header_list::{members, trim_ows};

#[cfg(test)]
mod tests;

/// A content coding the gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Coding {
    Brotli,
    Zstd,
    Gzip,
    Identity,
}

impl Coding {
    /// The `Content-Encoding` token (and the value sent upstream in `Accept-Encoding`).
    pub fn as_str(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
            Coding::Identity => "identity",
        }
    }
}

/// The gateway's order when the client likes several codings equally: brotli compresses text
/// best, zstd next, gzip is the fallback every client has.
const PREFERENCE: [Coding; 3] = [Coding::Brotli, Coding::Zstd, Coding::Gzip];

/// A `qvalue` (RFC 9110 §12.4.2) in thousandths: `0`, `0.5`, `1.000`. `None` when malformed.
fn parse_qvalue(value: &[u8]) -> Option<u16> {
    let (whole, fraction) = match value.iter().position(|&b| b == b'.') {
        Some(dot) => (&value[..dot], &value[dot + 1..]),
        None => (value, &b""[..]),
    };
    if fraction.len() > 3 || !fraction.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for i in 0..3 {
        thousandths = thousandths * 10 + fraction.get(i).map_or(0, |d| u16::from(d - b'0'));
    }
    match whole {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// One `Accept-Encoding` member: its coding (lower-case) and weight, `None` when malformed.
fn parse_member(member: &[u8]) -> Option<(Vec<u8>, u16)> {
    let mut parts = member.split(|&b| b == b';');
    let coding = trim_ows(parts.next()?).to_ascii_lowercase();
    if coding.is_empty() {
        return None;
    }
    let mut weight = 1000;
    for param in parts {
        let param = trim_ows(param);
        let eq = param.iter().position(|&b| b == b'=')?;
        let (name, value) = (trim_ows(&param[..eq]), trim_ows(&param[eq + 1..]));
        if name.eq_ignore_ascii_case(b"q") {
            weight = parse_qvalue(value)?;
        }
    }
    Some((coding, weight))
}

/// The coding the gateway uses for a request with these `Accept-Encoding` field lines (RFC 9110
/// §12.5.3): the highest-weighted of `br`, `zstd` and `gzip` (`x-gzip` counts as `gzip`, `*`
/// stands for those not named), `q=0` meaning "not acceptable", ties going to the gateway's
/// preference; identity when the request names none of them or has no `Accept-Encoding` at
/// all. (RFC 9110 lets a request without the field take any coding, but clients that send none
/// are mostly tools and scripts that cannot decode one: identity is what nginx and the CDNs
/// send them.) Malformed members are ignored.
pub fn choose_coding<'a, I>(accept_encoding: I) -> Coding
where
    I: IntoIterator<Item = &'a [u8]>,
{
    // Weights of br, zstd, gzip in PREFERENCE order, then of `*`.
    let mut weights: [Option<u16>; 4] = [None; 4];
    for member in members(accept_encoding) {
        let Some((coding, weight)) = parse_member(member) else {
            continue;
        };
        let slot = match coding.as_slice() {
            b"br" => 0,
            b"zstd" => 1,
            b"gzip" | b"x-gzip" => 2,
            b"*" => 3,
            _ => continue,
        };
        // A coding listed twice keeps its highest weight, unless one listing refuses it: `q=0`
        // says "not acceptable" (RFC 9110 §12.4.2), and a refusal must not be outvoted.
        weights[slot] = Some(match weights[slot] {
            Some(0) => 0,
            _ if weight == 0 => 0,
            Some(w) => w.max(weight),
            None => weight,
        });
    }
    let mut best = Coding::Identity;
    let mut best_weight = 0;
    for (i, coding) in PREFERENCE.iter().enumerate() {
        let weight = weights[i].or(weights[3]).unwrap_or(0);
        if weight > best_weight {
            best = *coding;
            best_weight = weight;
        }
    }
    best
}

/// What a response's `Content-Encoding` says its body is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContentCoding {
    /// No coding (or only `identity`).
    Identity,
    /// Exactly one coding the gateway serves.
    One(Coding),
    /// A registered coding the gateway does not serve (`deflate`, `compress`), or several
    /// stacked: whether a client takes it is known, and it is not the request's.
    Other,
    /// A token outside the registry (`aes128gcm`, an API's own): a contract between the API and
    /// its clients the gateway cannot judge, stored like any answer, as the variant of the
    /// request's coding.
    Opaque,
}

fn content_coding(lines: &[&[u8]]) -> ContentCoding {
    let mut found = ContentCoding::Identity;
    for member in members(lines.iter().copied()) {
        let this = match member.to_ascii_lowercase().as_slice() {
            b"identity" => continue,
            b"gzip" | b"x-gzip" => ContentCoding::One(Coding::Gzip),
            b"br" => ContentCoding::One(Coding::Brotli),
            b"zstd" => ContentCoding::One(Coding::Zstd),
            b"deflate" | b"compress" | b"x-compress" => ContentCoding::Other,
            _ => ContentCoding::Opaque,
        };
        if found != ContentCoding::Identity {
            return ContentCoding::Other;
        }
        found = this;
    }
    found
}

/// A route's compression settings (`routes[].compression`), validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressionPolicy {
    pub enabled: bool,
    /// Lower-case media types (`application/json`) or ranges (`text/*`).
    pub types: Vec<String>,
    /// Responses that announce a smaller `Content-Length` stay uncompressed.
    pub min_bytes: u64,
    /// One level for every coding: 1 (fastest) to 9 (smallest), valid for gzip, brotli and zstd.
    pub level: u32,
}

/// The media types compressed by default: the text formats APIs and sites serve.
pub const DEFAULT_TYPES: [&str; 4] = [
    "application/json",
    "text/*",
    "application/javascript",
    "image/svg+xml",
];

/// Why a response goes out as the upstream sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Untouched {
    Disabled,
    /// Only complete `200` answers: a `206` is a slice of the identity body, and other statuses
    /// are not what clients download.
    Status,
    /// The upstream encoded it already, in the request's coding: passed as is, stored as the
    /// variant of that coding.
    Encoded,
    /// The upstream encoded it in another coding than the one asked for (or in several): passed
    /// as is, never stored, since no other client of the variant is known to decode it.
    ForeignCoding,
    /// `Cache-Control: no-transform` (RFC 9111 §5.2.2.6).
    NoTransform,
    /// A `Content-Range` body is a slice of the identity representation.
    Range,
    /// Not one of `types` (or no `Content-Type`).
    Type,
    /// `Content-Length` under `min_bytes`.
    Small,
}

impl Untouched {
    pub fn as_str(self) -> &'static str {
        match self {
            Untouched::Disabled => "disabled",
            Untouched::Status => "status",
            Untouched::Encoded => "encoded",
            Untouched::ForeignCoding => "foreign_coding",
            Untouched::NoTransform => "no_transform",
            Untouched::Range => "range",
            Untouched::Type => "type",
            Untouched::Small => "small",
        }
    }
}

/// What the gateway does to an upstream answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    Untouched(Untouched),
    /// Compressible, but the client takes identity: sent as is with `Vary: Accept-Encoding`,
    /// so the cache keeps it apart from the compressed copies.
    VaryOnly,
    /// Compressed with this coding, with `Vary: Accept-Encoding`.
    Compress(Coding),
}

impl std::fmt::Display for Transform {
    /// `compress:br`, `vary_only`, `untouched:type`: for the debug header and logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transform::Untouched(why) => write!(f, "untouched:{}", why.as_str()),
            Transform::VaryOnly => f.write_str("vary_only"),
            Transform::Compress(coding) => write!(f, "compress:{}", coding.as_str()),
        }
    }
}

impl Transform {
    /// Whether the answer depends on `Accept-Encoding` (and must say so in `Vary`): whatever the
    /// gateway touched, and every answer the upstream encoded, which is valid only for clients
    /// that accept its coding.
    pub fn varies(self) -> bool {
        matches!(
            self,
            Transform::VaryOnly
                | Transform::Compress(_)
                | Transform::Untouched(Untouched::Encoded | Untouched::ForeignCoding)
        )
    }

    /// Whether the answer may be stored as the variant of the request's coding.
    pub fn storable(self) -> bool {
        self != Transform::Untouched(Untouched::ForeignCoding)
    }
}

/// The facts of an upstream response header compression depends on.
#[derive(Debug, Clone, Copy)]
pub struct ResponseFacts<'a> {
    pub status: u16,
    pub content_type: Option<&'a [u8]>,
    /// `Content-Encoding` field lines.
    pub content_encoding: &'a [&'a [u8]],
    pub content_range: bool,
    pub content_length: Option<u64>,
    /// `Cache-Control` field lines.
    pub cache_control: &'a [&'a [u8]],
}

/// Whether the media type of `content_type` (parameters ignored, case-insensitive) is one of
/// `types`, where `text/*` stands for every `text/` subtype.
pub fn type_listed(types: &[String], content_type: &[u8]) -> bool {
    let media = content_type
        .split(|&b| b == b';')
        .next()
        .map(trim_ows)
        .unwrap_or_default()
        .to_ascii_lowercase();
    types.iter().any(|listed| match listed.strip_suffix('*') {
        Some(prefix) => prefix.ends_with('/') && media.starts_with(prefix.as_bytes()),
        None => media == listed.as_bytes(),
    })
}

impl CompressionPolicy {
    /// What to do with an upstream answer for a request whose chosen coding is `coding`. HEAD
    /// answers get the same decision as GET's, so their headers match.
    pub fn decide(&self, response: &ResponseFacts<'_>, coding: Coding) -> Transform {
        let untouched = |why| Transform::Untouched(why);
        // On every route, compression on or off: an encoded answer is valid only for its coding.
        match content_coding(response.content_encoding) {
            ContentCoding::Identity => {}
            ContentCoding::One(encoded) if encoded == coding => {
                return untouched(Untouched::Encoded)
            }
            ContentCoding::Opaque => return untouched(Untouched::Encoded),
            ContentCoding::One(_) | ContentCoding::Other => {
                return untouched(Untouched::ForeignCoding)
            }
        }
        if !self.enabled {
            return untouched(Untouched::Disabled);
        }
        if response.status != 200 {
            return untouched(Untouched::Status);
        }
        if response.content_range {
            return untouched(Untouched::Range);
        }
        if members(response.cache_control.iter().copied())
            .any(|directive| directive.eq_ignore_ascii_case(b"no-transform"))
        {
            return untouched(Untouched::NoTransform);
        }
        if !response
            .content_type
            .is_some_and(|content_type| type_listed(&self.types, content_type))
        {
            return untouched(Untouched::Type);
        }
        // An empty body has nothing to compress, and an empty stream is not valid brotli.
        if response
            .content_length
            .is_some_and(|length| length == 0 || length < self.min_bytes)
        {
            return untouched(Untouched::Small);
        }
        match coding {
            Coding::Identity => Transform::VaryOnly,
            coding => Transform::Compress(coding),
        }
    }
}

/// The `ETag` of a compressed copy: the upstream's validator weakened (`"x"` → `W/"x"`), as
/// nginx does, since the bytes differ from the identity copy's while the content is the same.
/// A weak `ETag` stays as is; a malformed one is dropped (`None`), as it validates nothing.
/// `If-None-Match` compares weakly (RFC 9110 §13.1.2), so conditional requests carrying either
/// form still get a 304.
pub fn compressed_etag(etag: &[u8]) -> Option<Vec<u8>> {
    let etag = trim_ows(etag);
    let opaque = etag.strip_prefix(b"W/").unwrap_or(etag);
    let well_formed = opaque.len() >= 2
        && opaque.first() == Some(&b'"')
        && opaque.last() == Some(&b'"')
        && !opaque[1..opaque.len() - 1].contains(&b'"');
    if !well_formed {
        return None;
    }
    let mut weak = b"W/".to_vec();
    weak.extend_from_slice(opaque);
    Some(weak)
}
