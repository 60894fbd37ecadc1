//! `probe` and `loadtest --cacert` with the certificate `openssl req -x509 -newkey ...` makes:
//! self-signed and marked `CA:TRUE`, which rustls alone refuses as a server certificate
//! (`CaUsedAsEndEntity`) and curl accepts. The tools accept it when it is itself in the
//! `--cacert` file, still checking its name.

use std::path::Path;
use std::process::{Command, Output};

use cors_edge_tests::gateway::TempDir;
use cors_edge_tests::{
    binary_path, GatewayConfig, GatewayProcess, Reply, Upstream, UpstreamRequest,
};

const ORIGINS: [&str; 2] = ["https://a.example", "https://b.example"];

fn api(req: &UpstreamRequest) -> Reply {
    let mut reply = if req.method == "OPTIONS" {
        Reply::status(204)
            .header("access-control-allow-methods", "GET, PUT")
            .header("access-control-max-age", "600")
    } else {
        Reply::ok("tls").header("cache-control", "max-age=60")
    };
    if let Some(origin) = req.header("origin") {
        reply = reply
            .header("access-control-allow-origin", &origin)
            .header("vary", "Origin");
    }
    reply
}

/// `cert.pem` and `key.pem` for `name` in `dir`, made by the openssl CLI exactly as the issue
/// quotes it (`CA:TRUE` is OpenSSL's default for `req -x509`), or, without the CLI, by rcgen
/// with the same properties.
fn make_cert(dir: &Path, name: &str) -> String {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .arg("-subj")
        .arg(format!("/CN={name}"))
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{name}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    match made {
        Ok(output) if output.status.success() => {
            let text = Command::new("openssl")
                .args(["x509", "-noout", "-text", "-in"])
                .arg(&cert)
                .output()
                .expect("openssl x509");
            let text = String::from_utf8_lossy(&text.stdout);
            assert!(
                text.contains("CA:TRUE"),
                "openssl made no CA:TRUE cert:\n{text}"
            );
        }
        _ => {
            let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).expect("params");
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            let key_pair = rcgen::KeyPair::generate().expect("key");
            let made = params.self_signed(&key_pair).expect("self-signed");
            std::fs::write(&cert, made.pem()).expect("write cert");
            std::fs::write(&key, key_pair.serialize_pem()).expect("write key");
        }
    }
    cert.display().to_string()
}

fn start(upstream: &Upstream, cert: &str) -> GatewayProcess {
    let key = cert.replace(".crt", ".key");
    let config = GatewayConfig::new(upstream.addr).tls(cert, key).yaml();
    let gateway = GatewayProcess::start(&config);
    assert!(!gateway.tls.is_empty(), "no TLS listener");
    gateway
}

async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(binary_path())
            .args(&args)
            .output()
            .expect("run cors-edge")
    })
    .await
    .expect("join")
}

fn shown(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn probe_and_loadtest_accept_a_ca_true_self_signed_server_certificate_in_cacert() {
    let dir = TempDir::new("ca-true-cert");
    let cert = make_cert(&dir.0, "localhost");
    let upstream = Upstream::start(api).await;
    let gateway = start(&upstream, &cert);
    let url = format!("https://localhost:{}/data", gateway.tls[0].port());

    let args = [
        "probe", &url, "--cacert", &cert, "--json", "--origin", ORIGINS[0], "--origin", ORIGINS[1],
    ];
    let output = run(args.iter().map(|a| a.to_string()).collect()).await;
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let tls = report["connection"]["tls_version"].as_str().unwrap_or("");
    assert!(tls.starts_with("TLSv1."), "{report}");

    let args = [
        "loadtest",
        &url,
        "--cacert",
        &cert,
        "--json",
        "--requests",
        "20",
    ];
    let output = run(args.iter().map(|a| a.to_string()).collect()).await;
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["responses"], 20, "{report}");
}

#[tokio::test]
async fn a_ca_true_certificate_for_another_name_is_still_refused() {
    let dir = TempDir::new("ca-true-other");
    let cert = make_cert(&dir.0, "other.test");
    let upstream = Upstream::start(api).await;
    let gateway = start(&upstream, &cert);
    let url = format!("https://localhost:{}/data", gateway.tls[0].port());
    let args = [
        "probe", &url, "--cacert", &cert, "--json", "--origin", ORIGINS[0],
    ];
    let output = run(args.iter().map(|a| a.to_string()).collect()).await;
    assert_ne!(output.status.code(), Some(0), "{}", shown(&output));
    let all = shown(&output);
    assert!(
        all.contains("NotValidForName") || all.contains("not valid for name"),
        "the refusal names the name mismatch: {all}"
    );
    // A certificate that is not in the file is refused whatever its name.
    let stranger = make_cert(&dir.0, "localhost");
    let args = [
        "probe", &url, "--cacert", &stranger, "--json", "--origin", ORIGINS[0],
    ];
    let output = run(args.iter().map(|a| a.to_string()).collect()).await;
    assert_ne!(output.status.code(), Some(0), "{}", shown(&output));
    assert_eq!(upstream.total(), 0, "no request got through");
}
