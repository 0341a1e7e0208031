//! The daemon: start-up (drivers, token source, certificate, sockets), the accept loop on the
//! main thread, one named thread per connection, and shutdown.
//!
//! Signals: SIGHUP re-reads the token source and the certificate; SIGTERM or SIGINT stops
//! accepting, lets sessions run on for up to `drain_timeout`, then closes the rest with
//! websocket Close 1001 and exits.

use std::io::{self, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::config::{Config, ConfigError};
use crate::driver::{DriverRegistry, LoadError};
use crate::listener::{self, ListenerError, TlsIdentity};
use crate::session::{self, Shared};
use crate::sessions::Sessions;
use crate::token::{self, TokenError};
use crate::unix;

const SIGNALS: Token = Token(usize::MAX);
/// After sessions end, freed memory is handed back to the kernel within this time.
const TRIM_INTERVAL: Duration = Duration::from_secs(2);
/// How long sessions get to say goodbye after the drain time.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration file is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A driver could not be loaded or initialised.
    #[error(transparent)]
    Driver(#[from] LoadError),
    /// The token source could not be opened.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The listening side could not be set up.
    #[error(transparent)]
    Listener(#[from] ListenerError),
    /// Signal handlers or the poller could not be set up.
    #[error("cannot set up the accept loop: {0}")]
    Io(#[from] io::Error),
}

/// Everything the daemon serves with, loaded and checked, not yet listening.
pub fn prepare(config: Config) -> Result<Shared, StartError> {
    let tls = match (&config.ssl_certificate, &config.ssl_key) {
        (Some(cert), Some(key)) => Some(TlsIdentity::load(cert, key)?),
        _ if config.listen_insecure => None,
        _ => return Err(ListenerError::NoCertificate.into()),
    };
    let drivers = DriverRegistry::load(&config)?;
    let tokens = token::open(&config.token_source, &config.ini)?;
    Ok(Shared {
        config,
        drivers,
        tokens,
        tls,
        sessions: Sessions::new(),
    })
}

/// A daemon bound to its addresses.
pub struct Daemon {
    shared: Arc<Shared>,
    listeners: Vec<mio::net::TcpListener>,
}

impl Daemon {
    /// Prepares and binds.
    pub fn start(config: Config) -> Result<Self, StartError> {
        let shared = prepare(config)?;
        let listeners = listener::bind(&shared.config.listen)?;
        for l in &listeners {
            let scheme = if shared.tls.is_some() {
                "wss"
            } else {
                "ws (listen_insecure)"
            };
            log::info!("listening on {} ({scheme})", l.local_addr()?);
        }
        if shared.config.connect_insecure {
            log::warn!("connect_insecure = true: cleartext drivers are allowed");
        }
        Ok(Self {
            shared: Arc::new(shared),
            listeners,
        })
    }

    /// The bound addresses.
    pub fn local_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Accepts until SIGTERM or SIGINT, then drains.
    pub fn run(mut self) -> Result<(), StartError> {
        let mut poll = Poll::new()?;
        for (i, l) in self.listeners.iter_mut().enumerate() {
            poll.registry().register(l, Token(i), Interest::READABLE)?;
        }
        let mut signals = Signals::new([SIGHUP, SIGTERM, SIGINT])?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        let mut events = Events::with_capacity(64);
        let mut last_trim = Instant::now();
        'accepting: loop {
            if let Err(e) = poll.poll(&mut events, Some(TRIM_INTERVAL)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e.into());
            }
            if last_trim.elapsed() >= TRIM_INTERVAL {
                last_trim = Instant::now();
                if self.shared.sessions.take_ended() > 0 {
                    unix::release_free_memory();
                }
            }
            for event in events.iter() {
                if event.token() == SIGNALS {
                    for signal in signals.pending() {
                        match signal {
                            SIGHUP => self.reload(),
                            _ => break 'accepting,
                        }
                    }
                } else if let Some(l) = self.listeners.get(event.token().0) {
                    self.accept_all(l);
                }
            }
        }
        drop(std::mem::take(&mut self.listeners));
        self.drain();
        Ok(())
    }

    fn accept_all(&self, listener: &mio::net::TcpListener) {
        loop {
            match listener.accept() {
                Ok((stream, client)) => {
                    let stream = TcpStream::from(OwnedFd::from(stream));
                    self.spawn_session(stream, client);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and the like: log, and let the next readiness event retry.
                    log::error!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn spawn_session(&self, stream: TcpStream, client: std::net::SocketAddr) {
        let config = &self.shared.config;
        let Some(registration) = self
            .shared
            .sessions
            .register(stream.as_raw_fd(), config.max_connections)
        else {
            log::warn!(
                "refusing {client}: max_connections ({}) reached",
                config.max_connections
            );
            refuse_busy(stream);
            return;
        };
        let id = registration.id();
        let shared = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name(format!("session-{id}"))
            .stack_size(config.thread_stack_size)
            .spawn(move || session::run(&shared, stream, client, registration));
        if let Err(e) = spawned {
            log::error!("session {id}: cannot start a thread for {client}: {e}");
        }
    }

    fn reload(&self) {
        log::info!("SIGHUP: reloading the token source and the certificate");
        if let Err(e) = self.shared.tokens.reload() {
            log::error!("token source reload failed, keeping the old tokens: {e}");
        }
        if let Some(tls) = &self.shared.tls {
            match tls.reload() {
                Ok(()) => log::info!("certificate reloaded"),
                Err(e) => log::error!("certificate reload failed, keeping the old one: {e}"),
            }
        }
    }

    fn drain(&self) {
        let sessions = &self.shared.sessions;
        let drain = self.shared.config.drain_timeout;
        log::info!(
            "shutting down: {} sessions, waiting up to {drain:?}",
            sessions.active()
        );
        if !wait_for_no_sessions(sessions, Instant::now() + drain) {
            log::info!("closing {} remaining sessions", sessions.active());
            sessions.close_all();
            wait_for_no_sessions(sessions, Instant::now() + CLOSE_WAIT);
        }
        log::info!("stopped");
    }
}

fn wait_for_no_sessions(sessions: &Sessions, deadline: Instant) -> bool {
    while sessions.active() > 0 {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Answers 503 without blocking the accept loop (best effort), then closes.
fn refuse_busy(stream: TcpStream) {
    let mut stream = stream;
    let _ = stream.set_nonblocking(true);
    let body = "consolegate: too many connections\n";
    let _ = write!(
        stream,
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
