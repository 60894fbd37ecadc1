//! Starting and stopping the gateway process.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port the OS considers free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

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
    path
}

/// A running gateway, killed on drop.
pub struct GatewayProcess {
    child: Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub config_path: PathBuf,
    _dir: TempDir,
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "cors-edge-test-{label}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn wait_for_port(addr: SocketAddr, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "gateway exited with {status} before listening on {addr}"
            ));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(format!("gateway did not listen on {addr} within 15s"))
}

impl GatewayProcess {
    /// Starts `cors-edge run` with `config_yaml`, in which `{listen}` and `{admin}` are
    /// replaced by free loopback addresses.
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
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let dir = TempDir::new("gw");
        let config_path = dir.0.join("gateway.yaml");
        let yaml = config_yaml
            .replace("{listen}", &addr.to_string())
            .replace("{admin}", &admin.to_string());
        std::fs::write(&config_path, yaml).expect("write config");
        let stderr_path = dir.0.join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut command = Command::new(binary_path());
        command
            .arg("run")
            .arg("-c")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(stderr);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start the gateway: {e}"))?;
        if let Err(e) =
            wait_for_port(addr, &mut child).and_then(|()| wait_for_port(admin, &mut child))
        {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            return Err(format!("{e}\nstderr:\n{log}"));
        }
        Ok(GatewayProcess {
            child,
            addr,
            admin,
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

    /// Rewrites the config file in place (for reload tests); placeholders as in `start`.
    pub fn rewrite_config(&self, config_yaml: &str) {
        let yaml = config_yaml
            .replace("{listen}", &self.addr.to_string())
            .replace("{admin}", &self.admin.to_string());
        std::fs::write(&self.config_path, yaml).expect("rewrite config");
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
