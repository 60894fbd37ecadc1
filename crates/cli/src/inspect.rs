//! `cors-edge inspect`: client of the admin API's `GET /cache`, printing what is stored for a
//! URL, an origin, a host, a prefix or a tag as a table (or the API's JSON with `--json`).

use clap::Args;
use serde_json::Value;

use crate::purge::SelectorArgs;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Admin API base URL, e.g. http://127.0.0.1:9901
    #[arg(long)]
    pub admin: String,
    /// Bearer token; defaults to $CORS_EDGE_ADMIN_TOKEN (or the variable --token-env names).
    #[arg(long, env = "CORS_EDGE_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Read the token from this environment variable instead.
    #[arg(long, value_name = "NAME", conflicts_with = "token")]
    pub token_env: Option<String>,
    #[command(flatten)]
    pub selector: SelectorArgs,
    /// At most this many entries (the API's default is 100).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print the API's JSON answer instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Percent-encodes a query value: everything but unreserved characters, `/` and `:`.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `GET /cache` query for these flags.
pub fn query(args: &InspectArgs) -> String {
    let mut pairs: Vec<String> = args
        .selector
        .fields
        .iter()
        .map(|(field, value)| format!("{}={}", field.name(), encode(value)))
        .collect();
    if let Some(limit) = args.limit {
        pairs.push(format!("limit={limit}"));
    }
    pairs.join("&")
}

fn token(args: &InspectArgs) -> Result<Option<String>, String> {
    match &args.token_env {
        Some(name) => std::env::var(name)
            .map(Some)
            .map_err(|_| format!("--token-env {name}: ${name} is not set")),
        None => Ok(args.token.clone()),
    }
}

async fn fetch(args: &InspectArgs) -> Result<(u16, String), String> {
    let token = token(args)?;
    crate::admin_client::send(crate::admin_client::AdminRequest {
        admin: &args.admin,
        method: http::Method::GET,
        path_and_query: &format!("/cache?{}", query(args)),
        token: token.as_deref(),
        json: None,
    })
    .await
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The answer as a table: one row per entry, then whether the list was cut.
pub fn table(answer: &Value) -> String {
    let headings = [
        "METHOD", "HOST", "URL", "ORIGIN", "CODING", "STATE", "AGE", "FRESH", "STATUS", "ACAO",
        "VARY", "SIZE", "TAGS",
    ];
    let empty = Vec::new();
    let entries = answer["variants"].as_array().unwrap_or(&empty);
    let mut rows: Vec<Vec<String>> = vec![headings.iter().map(|h| h.to_string()).collect()];
    for entry in entries {
        let mut method = text(&entry["method"]);
        if let Some(ask) = entry.get("preflight") {
            method = format!(
                "OPTIONS({} {})",
                text(&ask["request_method"]),
                text(&ask["request_headers"])
            );
        }
        let tags = entry["tags"]
            .as_array()
            .map(|t| t.iter().map(text).collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        rows.push(vec![
            method,
            text(&entry["host"]),
            text(&entry["url"]),
            text(&entry["origin"]),
            text(&entry["coding"]),
            text(&entry["state"]),
            format!("{}s", text(&entry["age_secs"])),
            format!("{}s", text(&entry["fresh_secs"])),
            text(&entry["status"]),
            text(&entry["access_control"]["access-control-allow-origin"]),
            text(&entry["vary"]),
            text(&entry["size_bytes"]),
            if tags.is_empty() { "-".into() } else { tags },
        ]);
    }
    let widths: Vec<usize> = (0..headings.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    let count = entries.len();
    if answer["truncated"].as_bool() == Some(true) {
        out.push_str(&format!(
            "{count} entries shown; more match (truncated at limit {}): narrow the selector or raise --limit\n",
            text(&answer["limit"])
        ));
    } else {
        out.push_str(&format!("{count} entries\n"));
    }
    out
}

pub async fn run(args: InspectArgs) -> i32 {
    match fetch(&args).await {
        Ok((200, body)) => {
            if args.json {
                println!("{body}");
                return 0;
            }
            match serde_json::from_str::<Value>(&body) {
                Ok(answer) => {
                    print!("{}", table(&answer));
                    0
                }
                Err(e) => {
                    eprintln!(
                        "cors-edge inspect: the admin API answered something else than JSON: {e}"
                    );
                    1
                }
            }
        }
        Ok((status, body)) => {
            eprintln!("cors-edge inspect: admin answered {status}: {body}");
            1
        }
        Err(e) => {
            eprintln!("cors-edge inspect: {e}");
            1
        }
    }
}
