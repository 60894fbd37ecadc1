//! Listen addresses with port 0 (the OS picks the port) and the ready file that reports the
//! addresses actually bound.
//!
//! Pingora binds its listeners itself from address strings and does not tell which port it
//! got, so for an address with port 0 the gateway reserves a port first: a socket bound with
//! `SO_REUSEPORT` that never listens, held for the life of the process. It accepts nothing
//! (connections only reach Pingora's listening socket on the same port), and while it is held
//! no other process can be given that port, so there is no window between choosing a port
//! and binding it. Pingora then binds the concrete address, also with `SO_REUSEPORT`.
//!
//! A test harness or a supervisor that starts the gateway on port 0 learns the addresses from
//! the ready file (`run --ready-file PATH`), written once every listener accepts, and knows
//! they are this process's because the file carries its pid.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use pingora::listeners::TcpSocketOptions;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use serde::Serialize;
use socket2::{Domain, Socket, Type};

/// One listener of the gateway, with the port it will really bind.
#[derive(Debug, Clone)]
pub struct ListenAddress {
    pub addr: SocketAddr,
    /// Bind with `SO_REUSEPORT`, to share the port with this process's reservation.
    reserved: bool,
}

impl ListenAddress {
    pub fn text(&self) -> String {
        self.addr.to_string()
    }

    /// Socket options Pingora must bind this address with.
    pub fn socket_options(&self) -> Option<TcpSocketOptions> {
        self.reserved.then(|| {
            let mut options = TcpSocketOptions::default();
            options.so_reuseport = Some(true);
            options
        })
    }
}

/// The sockets that hold reserved ports; dropping them would free the ports.
#[derive(Default)]
pub struct Reservations {
    held: Vec<(SocketAddr, Socket)>,
}

impl Reservations {
    /// Resolves a configured address: a concrete port is used as is, port 0 gets a port
    /// reserved for this process.
    pub fn resolve(&mut self, configured: &str) -> Result<ListenAddress, String> {
        let addr: SocketAddr = configured
            .parse()
            .map_err(|e| format!("listen address {configured:?}: {e}"))?;
        if addr.port() != 0 {
            // A port reserved earlier (by `demo`, which must know its ports to write its
            // config) is bound like any reserved port.
            let reserved = self.held.iter().any(|(held, _)| *held == addr);
            return Ok(ListenAddress { addr, reserved });
        }
        let reserve = || -> std::io::Result<(Socket, SocketAddr)> {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
            socket.set_reuse_port(true)?;
            socket.bind(&addr.into())?;
            let bound = socket
                .local_addr()?
                .as_socket()
                .ok_or_else(|| std::io::Error::other("not an internet address"))?;
            Ok((socket, bound))
        };
        let (socket, bound) =
            reserve().map_err(|e| format!("cannot reserve a port for {configured}: {e}"))?;
        self.held.push((bound, socket));
        Ok(ListenAddress {
            addr: bound,
            reserved: true,
        })
    }

    pub fn resolve_all(&mut self, configured: &[String]) -> Result<Vec<ListenAddress>, String> {
        configured.iter().map(|a| self.resolve(a)).collect()
    }
}

/// What the ready file says: this process's pid and every address it accepts on.
#[derive(Debug, Serialize)]
pub struct BoundListeners {
    pub pid: u32,
    pub listen: Vec<SocketAddr>,
    pub tls: Vec<SocketAddr>,
    pub admin: SocketAddr,
    pub demo: Vec<SocketAddr>,
}

impl BoundListeners {
    fn all(&self) -> impl Iterator<Item = &SocketAddr> {
        self.listen
            .iter()
            .chain(&self.tls)
            .chain(std::iter::once(&self.admin))
            .chain(&self.demo)
    }
}

/// Holds the reservations for the life of the server, logs the bound addresses once every
/// listener accepts, and then writes the ready file if one was asked for.
pub struct ReadyReporter {
    pub listeners: BoundListeners,
    pub ready_file: Option<PathBuf>,
    pub reservations: Reservations,
}

impl ReadyReporter {
    async fn all_accepting(&self) -> bool {
        for addr in self.listeners.all() {
            let connect = tokio::net::TcpStream::connect(addr);
            match tokio::time::timeout(Duration::from_millis(500), connect).await {
                Ok(Ok(_)) => {}
                _ => return false,
            }
        }
        true
    }

    fn write_ready_file(&self, path: &PathBuf) -> std::io::Result<()> {
        let json = serde_json::to_vec(&self.listeners).map_err(std::io::Error::other)?;
        // Written beside and renamed, so a reader never sees half a file.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, json)?;
        std::fs::rename(&partial, path)
    }
}

#[async_trait]
impl BackgroundService for ReadyReporter {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            if self.all_accepting().await {
                break;
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
        }
        let listen: Vec<String> = self
            .listeners
            .listen
            .iter()
            .map(|a| a.to_string())
            .collect();
        tracing::info!(
            "listening on {} (admin {})",
            listen.join(", "),
            self.listeners.admin
        );
        if let Some(path) = &self.ready_file {
            if let Err(e) = self.write_ready_file(path) {
                tracing::error!("cannot write the ready file {}: {e}", path.display());
            }
        }
        // Keep the reservations until the server stops.
        let _ = shutdown.changed().await;
        let _ = &self.reservations;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_concrete_port_is_kept_and_not_reserved() {
        let mut reservations = Reservations::default();
        let address = reservations.resolve("127.0.0.1:8080").expect("resolves");
        assert_eq!(address.addr.port(), 8080);
        assert!(address.socket_options().is_none());
        assert!(reservations.held.is_empty());
    }

    #[test]
    fn port_zero_gets_a_port_that_no_other_socket_can_take() {
        let mut reservations = Reservations::default();
        let address = reservations.resolve("127.0.0.1:0").expect("resolves");
        assert_ne!(address.addr.port(), 0);
        assert_eq!(
            address.socket_options().and_then(|o| o.so_reuseport),
            Some(true)
        );
        // A plain bind (what any other process or test does) is refused while reserved...
        assert!(std::net::TcpListener::bind(address.addr).is_err());
        // ...and the reservation itself accepts nothing.
        assert!(std::net::TcpStream::connect(address.addr).is_err());
        // The listener that shares the port with SO_REUSEPORT (Pingora's) binds.
        let sharer = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        sharer.set_reuse_port(true).expect("reuseport");
        sharer.bind(&address.addr.into()).expect("shares the port");
        sharer.listen(8).expect("listens");
        assert!(std::net::TcpStream::connect(address.addr).is_ok());
    }

    #[test]
    fn two_port_zero_addresses_get_different_ports() {
        let mut reservations = Reservations::default();
        let a = reservations.resolve("127.0.0.1:0").expect("a");
        let b = reservations.resolve("127.0.0.1:0").expect("b");
        assert_ne!(a.addr, b.addr);
    }

    #[test]
    fn a_bad_address_is_an_error_not_a_panic() {
        let mut reservations = Reservations::default();
        assert!(reservations.resolve("localhost:http").is_err());
    }
}
