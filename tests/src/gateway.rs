//! Starting and stopping the gateway process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `cors-edge` binary under test.
pub fn binary_path() -> PathBuf {
    if let Ok(path) = std::env::var("CORS_EDGE_BIN") {
        return PathBuf::from(path);
    }
    // target/<profile>/deps/<test-binary> -> target/<profile>/cors-edge
    let exe = std::env::current_exe().expect("current test executable");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = profile_dir.join("cors-edge");
    assert!(
        path.exists(),
        "{} is missing: build it first (cargo build --release -p cors-edge)",
        path.display()
    );
    if let Some(newer) = newer_source_than(&path) {
        panic!(
            "{} is older than {}: rebuild it (cargo build --release -p cors-edge) so the tests \
             do not run against stale code",
            path.display(),
            newer.display()
        );
    }
    path
}

/// A source file of the crates the binary is built from that changed after `binary` was
/// built. Only `crates/*/src`, manifests and build scripts count: a test file's change does
/// not relink the binary.
fn newer_source_than(binary: &Path) -> Option<PathBuf> {
    let built = std::fs::metadata(binary).and_then(|m| m.modified()).ok()?;
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates");
    let mut stack = vec![crates];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                // Only sources: not tests, benches or examples of the crates.
                let depth_ok = path.parent().is_some_and(|p| p.ends_with("crates"))
                    || name == "src"
                    || path.components().any(|c| c.as_os_str() == "src");
                if depth_ok {
                    stack.push(path);
                }
                continue;
            }
            let counts = name.ends_with(".rs") && path.components().any(|c| c.as_os_str() == "src")
                || name == "Cargo.toml"
                || name == "build.rs";
            if counts
                && std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .is_ok_and(|modified| modified > built)
            {
                return Some(path);
            }
        }
    }
    None
}

/// A running gateway, killed on drop.
pub struct GatewayProcess {
    child: Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    /// The TLS listeners, when the config has `{tls}` placeholders.
    pub tls: Vec<SocketAddr>,
    pub config_path: PathBuf,
    _dir: TempDir,
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A directory no other test (thread or process) gets: named by the process id and a
    /// counter, and created with `create_dir` (which fails if it exists) so a leftover of a
    /// dead process with the same id is never shared either. (Two threads reading the clock in
    /// the same nanosecond once got the same directory, and one gateway the other's config.)
    pub fn new(label: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        loop {
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("cors-edge-test-{label}-{}-{n}", std::process::id()));
            match std::fs::create_dir(&dir) {
                Ok(()) => return TempDir(dir),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create {}: {e}", dir.display()),
            }
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the gateway writes to its ready file once every listener accepts.
#[derive(Debug)]
struct ReadyFile {
    pid: u32,
    listen: Vec<SocketAddr>,
    tls: Vec<SocketAddr>,
    admin: SocketAddr,
}

fn parse_ready_file(text: &str) -> Result<ReadyFile, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("ready file is not JSON: {e}: {text}"))?;
    let addr = |value: &serde_json::Value| -> Result<SocketAddr, String> {
        value
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("ready file: {value} is not an address"))
    };
    let addrs = |key: &str| -> Result<Vec<SocketAddr>, String> {
        json[key]
            .as_array()
            .ok_or_else(|| format!("ready file has no {key} list: {text}"))?
            .iter()
            .map(addr)
            .collect()
    };
    Ok(ReadyFile {
        pid: json["pid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .ok_or_else(|| format!("ready file has no pid: {text}"))?,
        listen: addrs("listen")?,
        tls: addrs("tls")?,
        admin: addr(&json["admin"])?,
    })
}

/// Waits for the ready file of `child`: the addresses it reports were bound by that process
/// (the file names its pid), so a test can never reach another test's gateway.
fn wait_until_ready(path: &Path, child: &mut Child) -> Result<ReadyFile, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("gateway exited with {status} before it was ready"));
        }
        if let Ok(text) = std::fs::read_to_string(path) {
            let ready = parse_ready_file(&text)?;
            if ready.pid != child.id() {
                return Err(format!(
                    "ready file names pid {}, the gateway started is {}",
                    ready.pid,
                    child.id()
                ));
            }
            return Ok(ready);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err("gateway did not write its ready file within 20s".to_string())
}

/// Every listener placeholder becomes a port-0 address: the gateway's OS-chosen ports are read
/// back from its ready file.
pub(crate) fn fill_placeholders(config_yaml: &str) -> String {
    config_yaml
        .replace("{listen}", ANY_PORT)
        .replace("{admin}", ANY_PORT)
        .replace("{tls}", ANY_PORT)
}

const ANY_PORT: &str = "127.0.0.1:0";

impl GatewayProcess {
    /// Starts `cors-edge run` with `config_yaml`, in which `{listen}`, `{admin}` and `{tls}`
    /// are replaced by loopback addresses on port 0; the ports the gateway got are in
    /// `addr`, `admin` and `tls`.
    pub fn start(config_yaml: &str) -> GatewayProcess {
        Self::start_with_env(config_yaml, &[])
    }

    pub fn start_with_env(config_yaml: &str, env: &[(&str, &str)]) -> GatewayProcess {
        match Self::try_start(config_yaml, env) {
            Ok(gateway) => gateway,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like `start`, but returns the failure (exit status and stderr) instead of panicking.
    pub fn try_start(config_yaml: &str, env: &[(&str, &str)]) -> Result<GatewayProcess, String> {
        let dir = TempDir::new("gw");
        let config_path = dir.0.join("gateway.yaml");
        std::fs::write(&config_path, fill_placeholders(config_yaml)).expect("write config");
        let ready_path = dir.0.join("ready.json");
        let stderr_path = dir.0.join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut command = Command::new(binary_path());
        command
            .arg("run")
            .arg("-c")
            .arg(&config_path)
            .arg("--ready-file")
            .arg(&ready_path)
            .stdout(Stdio::null())
            .stderr(stderr);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start the gateway: {e}"))?;
        let ready = match wait_until_ready(&ready_path, &mut child) {
            Ok(ready) => ready,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                return Err(format!("{e}\nstderr:\n{log}"));
            }
        };
        let addr = *ready
            .listen
            .first()
            .ok_or("the gateway reported no listener")?;
        Ok(GatewayProcess {
            child,
            addr,
            admin: ready.admin,
            tls: ready.tls,
            config_path,
            _dir: dir,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends a signal (e.g. "TERM", "HUP") with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{name} failed");
    }

    /// Waits for the process to exit, up to `limit`; returns whether it did.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Rewrites the config file in place (for reload tests); placeholders as in `start`, so
    /// an unchanged listener reads as unchanged.
    pub fn rewrite_config(&self, config_yaml: &str) {
        std::fs::write(&self.config_path, fill_placeholders(config_yaml)).expect("rewrite config");
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        // SIGINT is Pingora's fast shutdown; fall back to SIGKILL.
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(self.child.id().to_string())
            .status();
        if !self.wait_exit(Duration::from_secs(3)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
