//! Black-box tests of the command line: `cors-edge check` (like `nginx -t`) and the startup
//! refusals of `cors-edge run`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};

use cors_edge_tests::gateway::TempDir;
use cors_edge_tests::upstream::RefusingAddr;
use cors_edge_tests::{binary_path, request, GatewayProcess};

const VALID: &str = "\
listen: [\"127.0.0.1:18080\"]
cache:
  max_bytes: 64MiB
upstreams:
  api:
    servers: [\"127.0.0.1:3000\", \"127.0.0.1:3001\"]
    read_timeout: 5s
routes:
  - name: api-route
    match: { host: \"api.example.test\", path_prefix: \"/v1\" }
    upstream: api
";

/// Runs `cors-edge check -c <file>` on `yaml`, without the admin token in the environment.
fn check(yaml: &str) -> (Output, String) {
    let dir = TempDir::new("check");
    let path = dir.0.join("gateway.yaml");
    std::fs::write(&path, yaml).expect("write config");
    let output = check_path(&path);
    (output, path.display().to_string())
}

fn check_path(path: &Path) -> Output {
    Command::new(binary_path())
        .arg("check")
        .arg("-c")
        .arg(path)
        .env_remove("CORS_EDGE_ADMIN_TOKEN")
        .output()
        .expect("run cors-edge check")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn check_accepts_a_valid_config_with_a_summary() {
    let (output, path) = check(VALID);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    let out = stdout(&output);
    assert!(out.contains(&path), "the summary names the file: {out}");
    for expected in [
        "api-route",
        "api.example.test",
        "/v1",
        "127.0.0.1:3000",
        "127.0.0.1:3001",
        "64MiB",
    ] {
        assert!(out.contains(expected), "summary lacks {expected:?}: {out}");
    }
}

#[test]
fn check_names_file_line_and_key_of_an_unknown_key() {
    let yaml = VALID.replace("  max_bytes: 64MiB", "  max_byte: 64MiB");
    let (output, path) = check(&yaml);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains(&format!("{path}:3")),
        "no file:line in {err:?}"
    );
    assert!(err.contains("max_byte"), "no key in {err:?}");
    assert!(err.contains("max_bytes"), "no suggestion in {err:?}");
    assert!(
        stdout(&output).is_empty(),
        "nothing on stdout for a failed check"
    );
}

#[test]
fn check_names_file_line_and_key_of_a_bad_value() {
    let yaml = VALID.replace("read_timeout: 5s", "read_timeout: 5 parsecs");
    let (output, path) = check(&yaml);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains(&format!("{path}:7")),
        "no file:line in {err:?}"
    );
    assert!(err.contains("read_timeout"), "no key in {err:?}");
}

#[test]
fn check_names_the_route_of_a_dangling_upstream() {
    let yaml = VALID.replace("    upstream: api\n", "    upstream: nope\n");
    let (output, path) = check(&yaml);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains(&format!("{path}:")), "no file in {err:?}");
    assert!(
        err.contains("upstream") && err.contains("nope"),
        "no key in {err:?}"
    );
}

#[test]
fn check_refuses_broken_yaml_and_missing_files() {
    let (output, path) = check("listen: [\n  - :: bad");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains(&path), "{}", stderr(&output));
    let missing = check_path(Path::new("/nonexistent/cors-edge.yaml"));
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("/nonexistent/cors-edge.yaml"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn check_refuses_an_unprotected_admin_off_loopback() {
    let yaml = format!("{VALID}admin:\n  listen: \"0.0.0.0:19901\"\n");
    let (output, _) = check(&yaml);
    assert_eq!(output.status.code(), Some(1), "stdout: {}", stdout(&output));
    assert!(
        stderr(&output).contains("CORS_EDGE_ADMIN_TOKEN"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn usage_errors_exit_2() {
    let output = Command::new(binary_path())
        .args(["check", "--bogus"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let output = Command::new(binary_path()).output().expect("run");
    assert_eq!(output.status.code(), Some(2));
}

/// A gateway config with `admin` as the admin listener; its upstream is never contacted (an
/// address that refuses connections, held for the process's lifetime).
fn gateway_config(admin: &str) -> String {
    static UPSTREAM: std::sync::OnceLock<RefusingAddr> = std::sync::OnceLock::new();
    let upstream = UPSTREAM.get_or_init(RefusingAddr::new).addr;
    format!(
        "listen: [\"{{listen}}\"]\nadmin:\n  listen: \"{admin}\"\nupstreams:\n  api:\n    servers: [\"{upstream}\"]\nroutes:\n  - name: api\n    upstream: api\n"
    )
}

#[test]
fn run_refuses_an_admin_off_loopback_without_a_token() {
    assert!(
        std::env::var_os("CORS_EDGE_ADMIN_TOKEN").is_none(),
        "this test needs CORS_EDGE_ADMIN_TOKEN unset in its environment"
    );
    let config = gateway_config("0.0.0.0:0");
    let error = match GatewayProcess::try_start(&config, &[]) {
        Ok(_) => panic!("the gateway started with an unauthenticated admin API on 0.0.0.0"),
        Err(e) => e,
    };
    assert!(error.contains("exit status: 1"), "{error}");
    assert!(
        error.contains("CORS_EDGE_ADMIN_TOKEN"),
        "the message names the variable to set: {error}"
    );
    assert!(
        error.contains("0.0.0.0"),
        "the message names the address: {error}"
    );
}

#[test]
fn run_refuses_an_empty_token() {
    let config = gateway_config("0.0.0.0:0");
    let error = match GatewayProcess::try_start(&config, &[("CORS_EDGE_ADMIN_TOKEN", "  ")]) {
        Ok(_) => panic!("the gateway started with a blank admin token on 0.0.0.0"),
        Err(e) => e,
    };
    assert!(error.contains("exit status: 1"), "{error}");
}

#[test]
fn run_reports_a_bad_config_and_exits_1() {
    let config = gateway_config("{admin}").replace("routes:", "routez:");
    let error = match GatewayProcess::try_start(&config, &[]) {
        Ok(_) => panic!("started with an unknown top-level key"),
        Err(e) => e,
    };
    assert!(error.contains("exit status: 1"), "{error}");
    assert!(
        error.contains("gateway.yaml:") && error.contains("routez"),
        "{error}"
    );
}

#[tokio::test]
async fn run_starts_with_an_admin_off_loopback_when_the_token_is_set() {
    // Admin on every interface, port 0: the ready file of this very process reports the port.
    let gateway = GatewayProcess::start_with_env(
        &gateway_config("0.0.0.0:0"),
        &[("CORS_EDGE_ADMIN_TOKEN", "s3cret")],
    );
    assert!(
        gateway.admin.ip().is_unspecified(),
        "bound off loopback: {}",
        gateway.admin
    );
    // Reached over loopback only.
    let admin: SocketAddr = ([127, 0, 0, 1], gateway.admin.port()).into();
    // The token is enforced on the protected endpoints.
    let anonymous = request(admin, "GET", "/stats", &[]).await;
    assert_eq!(anonymous.status, 401);
    let wrong = request(admin, "GET", "/stats", &[("authorization", "Bearer nope")]).await;
    assert_eq!(wrong.status, 403);
    let authorized = request(
        admin,
        "GET",
        "/stats",
        &[("authorization", "Bearer s3cret")],
    )
    .await;
    assert_eq!(authorized.status, 200, "{}", authorized.text());
    let mut gateway = gateway;
    assert!(gateway.is_running(), "the gateway is still running");
}
