//! `cors-edge purge`: client of the admin purge endpoint.

use bytes::Bytes;
use clap::{ArgGroup, Args};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("selector").required(true).multiple(true)
    .args(["origin", "host", "prefix", "url", "tag", "all"])))]
pub struct PurgeArgs {
    /// Admin API base URL, e.g. http://127.0.0.1:9901
    #[arg(long)]
    pub admin: String,
    /// Bearer token; defaults to $CORS_EDGE_ADMIN_TOKEN.
    #[arg(long, env = "CORS_EDGE_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[arg(long)]
    pub origin: Option<String>,
    #[arg(long)]
    pub host: Option<String>,
    #[arg(long)]
    pub prefix: Option<String>,
    #[arg(long)]
    pub url: Option<String>,
    #[arg(long)]
    pub tag: Option<String>,
    #[arg(long, conflicts_with_all = ["origin", "host", "prefix", "url", "tag"])]
    pub all: bool,
    /// Mark matches stale (revalidate next time) instead of deleting them.
    #[arg(long)]
    pub soft: bool,
}

pub fn body(args: &PurgeArgs) -> serde_json::Value {
    let mut body = serde_json::Map::new();
    let fields = [
        ("origin", &args.origin),
        ("host", &args.host),
        ("prefix", &args.prefix),
        ("url", &args.url),
        ("tag", &args.tag),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            body.insert(name.to_string(), value.clone().into());
        }
    }
    if args.all {
        body.insert("all".into(), true.into());
    }
    if args.soft {
        body.insert("soft".into(), true.into());
    }
    serde_json::Value::Object(body)
}

async fn send(args: &PurgeArgs) -> Result<(u16, String), String> {
    let base: http::Uri = args
        .admin
        .parse()
        .map_err(|e| format!("--admin {:?} is not a URL: {e}", args.admin))?;
    if base.scheme_str() != Some("http") {
        return Err(format!(
            "--admin {:?}: only http:// is supported",
            args.admin
        ));
    }
    let authority = base
        .authority()
        .ok_or_else(|| format!("--admin {:?} has no host", args.admin))?
        .clone();
    let port = authority.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((authority.host(), port))
        .await
        .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {authority} failed: {e}"))?;
    tokio::spawn(connection);
    let payload = body(args).to_string();
    let mut request = http::Request::post(format!("{}/purge", base.path().trim_end_matches('/')))
        .header(http::header::HOST, authority.as_str())
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(token) = &args.token {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(Full::new(Bytes::from(payload)))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("purge request failed: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).trim().to_string()))
}

pub async fn run(args: PurgeArgs) -> i32 {
    match send(&args).await {
        Ok((200, body)) => {
            println!("{body}");
            0
        }
        Ok((status, body)) => {
            eprintln!("cors-edge purge: admin answered {status}: {body}");
            1
        }
        Err(e) => {
            eprintln!("cors-edge purge: {e}");
            1
        }
    }
}
