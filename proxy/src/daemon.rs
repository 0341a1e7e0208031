//! The daemon: start-up (drivers, token source, certificate, sockets), the accept loop on the
//! main thread, one named thread per connection, and shutdown.
//!
//! Signals: SIGHUP re-reads the token source and the certificate; SIGTERM or SIGINT stops
//! accepting, lets sessions run on for up to `drain_timeout`, then closes the rest with
//! websocket Close 1001 and exits.
//!
//! Under systemd the daemon reports its state and pings the watchdog ([`crate::systemd`]), and
//! takes the listening sockets systemd passes (socket activation) before binding the rest.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::config::{Config, ConfigError};
use crate::driver::{DriverRegistry, LoadError};
use crate::error::SessionError;
use crate::http_upgrade::{self, Transport};
use crate::listener::{self, ListenerError, TlsIdentity};
use crate::metrics::Metrics;
use crate::metrics_listener::{self, BearerToken, MetricsListenerError};
use crate::session::{self, Shared};
use crate::sessions::{Refusal, Sessions};
use crate::systemd::{self, ActivationError, Notifier};
use crate::token::{self, TokenError};
use crate::unix;

const SIGNALS: Token = Token(usize::MAX);
/// After sessions end, freed memory is handed back to the kernel within this time.
const TRIM_INTERVAL: Duration = Duration::from_secs(2);
/// How long sessions get to say goodbye after the drain time.
pub const CLOSE_WAIT: Duration = Duration::from_secs(3);
/// After `accept` ran out of descriptors (EMFILE, ENFILE) or memory, it is tried again this
/// often: the listener's readiness does not fire again for connections already queued.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

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
    /// The sockets systemd passed (socket activation) cannot be used.
    #[error(transparent)]
    Activation(#[from] ActivationError),
    /// The metrics listener could not be set up.
    #[error(transparent)]
    Metrics(#[from] MetricsListenerError),
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
    let metrics = Metrics::new();
    metrics.drivers_loaded(&drivers);
    metrics.read_certificates(&config);
    Ok(Shared {
        config,
        drivers,
        tokens,
        tls,
        sessions: Sessions::new(),
        metrics,
        accepting: AtomicBool::new(false),
    })
}

/// A daemon bound to its addresses.
pub struct Daemon {
    shared: Arc<Shared>,
    listeners: Vec<mio::net::TcpListener>,
    /// The `listen` address each of `listeners` serves, in the same order (a socket systemd
    /// passed serves the address it covers): what `proxy_protocol` is set for.
    serves: Vec<SocketAddr>,
    notifier: Notifier,
}

impl Daemon {
    /// Prepares, takes the sockets systemd passed and binds the other `listen` addresses.
    pub fn start(config: Config) -> Result<Self, StartError> {
        let shared = prepare(config)?;
        let listen = &shared.config.listen;
        let passed = systemd::passed_listeners(listen)?;
        let passed_addrs: Vec<_> = passed.iter().filter_map(|l| l.local_addr().ok()).collect();
        let unpassed: Vec<_> = listen
            .iter()
            .copied()
            .filter(|want| !passed_addrs.iter().any(|p| systemd::covers(*p, *want)))
            .collect();
        let mut serves: Vec<SocketAddr> = passed_addrs
            .iter()
            .map(|p| {
                let covered = listen.iter().find(|want| systemd::covers(*p, **want));
                covered.copied().unwrap_or(*p)
            })
            .collect();
        serves.extend(&unpassed);
        let mut listeners: Vec<_> = passed
            .into_iter()
            .map(mio::net::TcpListener::from_std)
            .collect();
        listeners.extend(listener::bind(&unpassed)?);
        let scheme = if shared.tls.is_some() {
            "wss"
        } else {
            "ws (listen_insecure)"
        };
        for (i, l) in listeners.iter().enumerate() {
            let from = if i < passed_addrs.len() {
                ", socket from systemd"
            } else {
                ""
            };
            log::info!("listening on {} ({scheme}{from})", l.local_addr()?);
        }
        if shared.config.connect_insecure {
            log::warn!("connect_insecure = true: cleartext drivers are allowed");
        }
        let metrics = match shared.config.metrics_listen {
            Some(addr) => {
                let token = shared
                    .config
                    .metrics_token_file
                    .as_deref()
                    .map(BearerToken::read)
                    .transpose()?;
                Some((metrics_listener::bind(addr)?, token))
            }
            None => None,
        };
        let shared = Arc::new(shared);
        if let Some((listener, token)) = metrics {
            log::info!(
                "metrics and health on http://{}/ (/metrics{}, /healthz, /readyz)",
                listener.local_addr()?,
                if token.is_some() {
                    " with a bearer token"
                } else {
                    ""
                }
            );
            metrics_listener::spawn(listener, Arc::clone(&shared), token)?;
        }
        Ok(Self {
            shared,
            listeners,
            serves,
            notifier: Notifier::from_env(),
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
        self.shared.accepting.store(true, Ordering::Release);
        let mut last_trim = Instant::now();
        let mut accept_stalled = false;
        let ready = self.ready_status();
        self.notifier.ready(&ready);
        'accepting: loop {
            let wait = if accept_stalled {
                ACCEPT_RETRY
            } else {
                TRIM_INTERVAL
            };
            let wait = self.notifier.poll_timeout(wait);
            let polled = poll.poll(&mut events, Some(wait));
            self.notifier.ping_if_due();
            if let Err(e) = polled {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e.into());
            }
            if accept_stalled {
                let still =
                    self.listeners.iter().enumerate().any(|(i, l)| {
                        matches!(self.accept_all(i, l), AcceptEnd::OutOfResources(_))
                    });
                if !still {
                    log::info!("accepting again");
                }
                accept_stalled = still;
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
                            SIGHUP => {
                                self.notifier.reloading();
                                self.reload();
                                self.notifier.ready(&ready);
                            }
                            _ => break 'accepting,
                        }
                    }
                } else if let Some(l) = self.listeners.get(event.token().0) {
                    if let AcceptEnd::OutOfResources(e) = self.accept_all(event.token().0, l) {
                        if !accept_stalled {
                            log::error!(
                                "accept failed: {e}; retrying every {} ms until it works",
                                ACCEPT_RETRY.as_millis()
                            );
                        }
                        accept_stalled = true;
                    }
                }
            }
        }
        self.shared.accepting.store(false, Ordering::Release);
        drop(std::mem::take(&mut self.listeners));
        self.drain();
        Ok(())
    }

    /// The status line systemd shows while the daemon serves.
    fn ready_status(&self) -> String {
        let addrs: Vec<String> = self.local_addrs().iter().map(ToString::to_string).collect();
        format!("listening on {}", addrs.join(", "))
    }

    /// Accepts every queued connection on the `index`th listener.
    fn accept_all(&self, index: usize, listener: &mio::net::TcpListener) -> AcceptEnd {
        let config = &self.shared.config;
        let proxy_protocol = self
            .serves
            .get(index)
            .is_some_and(|addr| config.proxy_protocol.on(*addr));
        loop {
            match listener.accept() {
                Ok((stream, client)) => {
                    let stream = TcpStream::from(OwnedFd::from(stream));
                    self.spawn_session(stream, client, proxy_protocol);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return AcceptEnd::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if out_of_resources(&e) => return AcceptEnd::OutOfResources(e),
                Err(e) => {
                    // A connection that failed before it was accepted (ECONNABORTED, ...).
                    log::debug!("accept failed: {e}");
                    continue;
                }
            }
        }
    }

    fn spawn_session(&self, stream: TcpStream, client: std::net::SocketAddr, proxy_protocol: bool) {
        let config = &self.shared.config;
        // A trusted proxy's connections count towards their real client's limit, once the
        // session has read who that is; never towards the proxy's own address.
        let counted = (!config.trusted_proxies.contains(client.ip())).then_some(client.ip());
        let registration =
            match self
                .shared
                .sessions
                .register(stream.as_raw_fd(), counted, config.limits())
            {
                Ok(registration) => registration,
                Err(refusal) => {
                    log::warn!("refusing {client}: {refusal}");
                    self.shared.metrics.refused_for("limit");
                    self.refuse_busy(stream, refusal);
                    return;
                }
            };
        let id = registration.id();
        let shared = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name(format!("session-{id}"))
            .stack_size(config.thread_stack_size)
            .spawn(move || session::run(&shared, stream, client, registration, proxy_protocol));
        if let Err(e) = spawned {
            log::error!("session {id}: cannot start a thread for {client}: {e}");
        }
    }

    /// Answers the refusal's 503 without blocking the accept loop (best effort), then closes.
    /// On wss there is no TLS session to answer in (and no time to set one up): the connection
    /// is just closed.
    fn refuse_busy(&self, stream: TcpStream, refusal: Refusal) {
        if self.shared.tls.is_some() {
            return;
        }
        let Some((status, reason)) = SessionError::Limit(refusal).http_refusal() else {
            return;
        };
        let mut stream = stream;
        let _ = stream.set_nonblocking(true);
        let _ = http_upgrade::write_refusal(&mut stream, status, reason, Transport::Plain);
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
        self.shared.metrics.read_certificates(&self.shared.config);
    }

    fn drain(&mut self) {
        let sessions = &self.shared.sessions;
        let drain = self.shared.config.drain_timeout;
        let status = format!(
            "shutting down: {} sessions, waiting up to {drain:?}",
            sessions.active()
        );
        // Kept-alive connections between two static requests hold no work: close them now.
        sessions.close_idle();
        log::info!("{status}");
        self.notifier.stopping(&status);
        let notifier = &mut self.notifier;
        if !wait_for_no_sessions(sessions, Instant::now() + drain, notifier) {
            log::info!("closing {} remaining sessions", sessions.active());
            sessions.close_all();
            wait_for_no_sessions(sessions, Instant::now() + CLOSE_WAIT, notifier);
        }
        log::info!("stopped");
    }
}

/// Waits until no session is left or `deadline` passes (false then), pinging the watchdog.
fn wait_for_no_sessions(sessions: &Sessions, deadline: Instant, notifier: &mut Notifier) -> bool {
    while sessions.active() > 0 {
        if Instant::now() >= deadline {
            return false;
        }
        notifier.ping_if_due();
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// How an accept round ended.
#[derive(Debug)]
enum AcceptEnd {
    /// No connection is queued.
    Drained,
    /// The process ran out of descriptors or memory: try again soon.
    OutOfResources(io::Error),
}

/// EMFILE, ENFILE, ENOBUFS, ENOMEM: errors that clear when resources free up.
fn out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}
