//! The one HTTP/1.1 client the admin commands (`purge`, `inspect`) talk to the admin API with.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// What a command sends to the admin API at `admin` (`http://host:port[/base]`).
pub struct AdminRequest<'a> {
    pub admin: &'a str,
    pub method: http::Method,
    /// Path and query below the admin base, e.g. `/cache?url=/x`.
    pub path_and_query: &'a str,
    pub token: Option<&'a str>,
    /// A JSON body, when there is one.
    pub json: Option<String>,
}

/// Sends the request; the answer's status and trimmed body, or why there is none.
pub async fn send(request: AdminRequest<'_>) -> Result<(u16, String), String> {
    let admin = request.admin;
    let base: http::Uri = admin
        .parse()
        .map_err(|e| format!("--admin {admin:?} is not a URL: {e}"))?;
    if base.scheme_str() != Some("http") {
        return Err(format!("--admin {admin:?}: only http:// is supported"));
    }
    let authority = base
        .authority()
        .ok_or_else(|| format!("--admin {admin:?} has no host"))?
        .clone();
    let port = authority.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((authority.host(), port))
        .await
        .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {authority} failed: {e}"))?;
    tokio::spawn(connection);
    let target = format!(
        "{}{}",
        base.path().trim_end_matches('/'),
        request.path_and_query
    );
    let mut builder = http::Request::builder()
        .method(request.method)
        .uri(target)
        .header(http::header::HOST, authority.as_str());
    if let Some(token) = request.token {
        builder = builder.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match request.json {
        Some(json) => {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
            Bytes::from(json)
        }
        None => Bytes::new(),
    };
    let http_request = builder.body(Full::new(body)).map_err(|e| e.to_string())?;
    let response = sender
        .send_request(http_request)
        .await
        .map_err(|e| format!("admin request failed: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).trim().to_string()))
}
