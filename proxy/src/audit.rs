//! The audit line: one per session, written when it ends, naming the token only by its hash.

use std::net::SocketAddr;
use std::time::Instant;

/// What the audit line records about a session.
#[derive(Debug)]
pub struct AuditRecord {
    /// Session number.
    pub session_id: u64,
    /// The browser's address.
    pub client: SocketAddr,
    /// [`token_hash`](crate::token::token_hash) of the token, `-` if none.
    pub token_hash: String,
    /// Console kind, `-` if not known.
    pub kind: String,
    /// `host:port`, `-` if not known.
    pub target: String,
    /// Driver name, `-` if none.
    pub driver: String,
    /// Bytes from browser to console.
    pub up: u64,
    /// Bytes from console to browser.
    pub down: u64,
    /// When the connection was accepted.
    pub started: Instant,
    /// Whether a request other than a static file's arrived (a websocket upgrade, or anything
    /// refused). A connection that never sent one (a load balancer's TCP health check, a port
    /// scan, a browser fetching pages and their files) gets a debug line, not an audit line.
    pub request_seen: bool,
    /// Static files answered on this connection (`web`), before any upgrade.
    pub assets: usize,
}

impl AuditRecord {
    /// A record for a connection just accepted.
    pub fn new(session_id: u64, client: SocketAddr) -> Self {
        Self {
            session_id,
            client,
            token_hash: "-".into(),
            kind: "-".into(),
            target: "-".into(),
            driver: "-".into(),
            up: 0,
            down: 0,
            started: Instant::now(),
            request_seen: false,
            assets: 0,
        }
    }

    /// Writes the line at info level under the target `consolegate::audit`.
    pub fn log(&self, close_reason: &str) {
        if !self.request_seen && self.assets > 0 {
            log::debug!(
                "connection {} from {} closed after {} static requests: {close_reason}",
                self.session_id,
                self.client,
                self.assets
            );
            return;
        }
        if !self.request_seen {
            log::debug!(
                "connection {} from {} closed before a request: {close_reason}",
                self.session_id,
                self.client
            );
            return;
        }
        log::info!(
            target: "consolegate::audit",
            "audit session={} client={} token={} kind={} target={} driver={} up={} down={} duration_ms={} close={:?}",
            self.session_id,
            self.client,
            self.token_hash,
            self.kind,
            self.target,
            self.driver,
            self.up,
            self.down,
            self.started.elapsed().as_millis(),
            close_reason
        );
    }
}
