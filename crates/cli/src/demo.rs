//! `cors-edge demo`: a demo API and a gateway in front of it, on loopback.

use std::path::PathBuf;

use clap::Args;
use cors_edge_gateway::demo::DEMO_ALLOWED_ORIGINS;
use cors_edge_gateway::{Reservations, RunOptions};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Gateway port.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Demo upstream API port.
    #[arg(long, default_value_t = 8081)]
    pub upstream_port: u16,
    /// Admin API port.
    #[arg(long, default_value_t = 9901)]
    pub admin_port: u16,
    /// Once every listener accepts, write the bound addresses (JSON with the pid) here;
    /// with port 0 for any of the ports, the OS picks them.
    #[arg(long = "ready-file")]
    pub ready_file: Option<PathBuf>,
}

/// The demo's ports, with any 0 replaced by a port reserved for this process.
struct DemoPorts {
    port: u16,
    upstream_port: u16,
    admin_port: u16,
}

fn demo_config(args: &DemoPorts) -> String {
    let origins = DEMO_ALLOWED_ORIGINS.map(|o| format!("\"{o}\"")).join(", ");
    format!(
        r#"# Written by `cors-edge demo`.
listen: ["127.0.0.1:{port}"]
admin: {{ listen: "127.0.0.1:{admin}" }}
cache: {{ max_bytes: 64MiB, stale_while_revalidate: 5s }}
upstreams:
  demo:
    servers: ["127.0.0.1:{upstream}"]
routes:
  - name: edge
    match: {{ path_prefix: "/edge/" }}
    upstream: demo
    cache: {{ enabled: true, max_ttl: 1h }}
    cors:
      mode: edge
      allow_origins: [{origins}]
      allow_credentials: true
      allow_methods: [GET, POST, PUT, DELETE]
      allow_headers: [Authorization, Content-Type]
      expose_headers: [X-Upstream-Hits]
      max_age: 600s
  - name: api
    match: {{ path_prefix: "/" }}
    upstream: demo
    cache: {{ enabled: true, max_ttl: 1h }}
    cors: {{ mode: upstream }}
"#,
        port = args.port,
        admin = args.admin_port,
        upstream = args.upstream_port,
    )
}

pub fn prepare(args: &DemoArgs) -> Result<RunOptions, String> {
    let ready_file = args.ready_file.clone();
    let mut reservations = Reservations::default();
    let mut reserve = |port: u16| -> Result<u16, String> {
        reservations
            .resolve(&format!("127.0.0.1:{port}"))
            .map(|address| address.addr.port())
    };
    let args = &DemoPorts {
        port: reserve(args.port)?,
        upstream_port: reserve(args.upstream_port)?,
        admin_port: reserve(args.admin_port)?,
    };
    let path: PathBuf =
        std::env::temp_dir().join(format!("cors-edge-demo-{}.yaml", std::process::id()));
    std::fs::write(&path, demo_config(args))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let gw = format!("http://127.0.0.1:{}", args.port);
    let admin = format!("http://127.0.0.1:{}", args.admin_port);
    println!(
        "cors-edge demo: gateway {gw}, demo API http://127.0.0.1:{}, admin {admin}",
        args.upstream_port
    );
    println!("config: {}\n", path.display());
    println!("Try (watch X-Cache, Vary and Access-Control-Allow-Origin):");
    println!("  curl -si {gw}/public -H 'Origin: https://app.example.com'          # ACAO * shared by all origins");
    println!("  curl -si {gw}/per-origin -H 'Origin: https://app.example.com'      # one variant per origin");
    println!("  curl -si {gw}/forgot-vary -H 'Origin: https://evil.example'        # upstream forgot Vary: Origin; the gateway keeps origins apart");
    println!("  curl -si {gw}/forgot-vary -H 'Origin: https://app.example.com'");
    println!("  curl -si -X OPTIONS {gw}/per-origin -H 'Origin: https://app.example.com' -H 'Access-Control-Request-Method: PUT' -H 'Access-Control-Request-Headers: content-type'");
    println!("  curl -si {gw}/edge/public -H 'Origin: http://localhost:5173'      # edge mode: CORS stamped by the gateway");
    println!("  curl -si {gw}/slow & curl -si {gw}/slow                            # concurrent misses coalesce into one upstream fetch");
    println!("  curl -s {admin}/stats; curl -s -XPOST {admin}/purge -d '{{\"origin\":\"https://app.example.com\"}}'");
    println!("  curl -s {admin}/metrics | grep cors_edge_requests_total");
    Ok(RunOptions {
        config_path: path,
        demo_upstream: Some(format!("127.0.0.1:{}", args.upstream_port)),
        reservations,
        ready_file,
    })
}
