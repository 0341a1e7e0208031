//! One browser connection, from accept to close, on its own thread. Its phases, each under a
//! deadline:
//!
//! 1. a trusted load balancer's PROXY header ([`client_address`]), TLS (wss) and the HTTP
//!    request head — `handshake_timeout`; then the forwarded headers name the client;
//! 2. Origin check, token lookup, driver choice, TCP connect to the console — `connect_timeout`
//!    — then a single-use token is consumed;
//! 3. `101 Switching Protocols`, then the driver's handshake — `handshake_timeout`;
//! 4. the relay — `idle_timeout`, until one side closes;
//! 5. the audit lines (start after the driver's handshake, end here) and the metrics.
//!
//! Before the upgrade a failure is answered with an HTTP status; after it, with a websocket
//! Close frame (see [`SessionError`]).

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use consolegate_driver_api::ConsoleRequest;

use crate::allowed_targets::AllowedTargets;
use crate::audit::AuditRecord;
use crate::browser_stream::BrowserStream;
use crate::client_address::{self, ClientAddr};
use crate::config::Config;
use crate::deadline::{is_timeout, remaining, set_socket_deadline};
use crate::driver::{DriverChannel, DriverRegistry};
use crate::error::{self, SessionError};
use crate::http_upgrade::{self, RequestError, UpgradeRequest};
use crate::listener::TlsIdentity;
use crate::metrics::{KindDriver, Metrics};
use crate::refusal_check;
use crate::relay::{self, RelayEnd};
use crate::sessions::{Registration, Sessions};
use crate::static_files::{self, Persistence};
use crate::token::{token_hash, TokenSource};
use crate::unix;
use crate::watchdog;
use crate::websocket::{self, BrowserHandshake, BrowserSocket};

/// How long a Close frame or refusal may take to send.
const GOODBYE_WAIT: Duration = Duration::from_secs(1);

/// What every session shares: configuration, drivers, token source, certificate, session set.
pub struct Shared {
    /// The configuration.
    pub config: Config,
    /// The loaded drivers.
    pub drivers: DriverRegistry,
    /// The token source.
    pub tokens: Box<dyn TokenSource>,
    /// The wss certificate, if the browser leg is TLS.
    pub tls: Option<TlsIdentity>,
    /// The live sessions.
    pub sessions: Arc<Sessions>,
    /// What is counted, for `metrics_listen`.
    pub metrics: Metrics,
    /// Whether the daemon accepts connections (false before the accept loop and while it
    /// drains), for `/readyz`.
    pub accepting: AtomicBool,
}

/// Runs one session, accepted from `peer` on a listener where `proxy_protocol` is on or off,
/// to its end and writes its audit line.
pub fn run(
    shared: &Shared,
    stream: TcpStream,
    peer: SocketAddr,
    registration: Registration,
    proxy_protocol: bool,
) {
    let mut audit = AuditRecord::new(registration.id(), ClientAddr::socket(peer));
    let accepted = Accepted {
        peer,
        proxy_protocol,
    };
    let close_reason = match serve(shared, stream, accepted, &mut audit, &registration) {
        Ok(reason) => reason,
        Err(e) => {
            shared.metrics.refused(&e);
            log::log!(e.log_level(), "session {}: {e}", audit.session_id);
            e.to_string()
        }
    };
    audit.log(&close_reason);
    drop(registration);
}

/// Where a connection came from: the socket's peer, and whether its listener expects PROXY
/// headers from trusted proxies.
#[derive(Clone, Copy)]
struct Accepted {
    peer: SocketAddr,
    proxy_protocol: bool,
}

/// A session after its handshakes: what the relay needs.
struct Established {
    ws: BrowserSocket,
    /// Declared before `console_tcp`: dropped first, while its socket is still open.
    channel: DriverChannel,
    console_tcp: TcpStream,
    first_up: Vec<u8>,
}

/// How the handshake phase ended without an error.
enum Opened {
    /// Both handshakes are done: relay.
    Relay(Box<Established>),
    /// The request was served without a console (a static file).
    Done(String),
}

fn serve(
    shared: &Shared,
    stream: TcpStream,
    accepted: Accepted,
    audit: &mut AuditRecord,
    registration: &Registration,
) -> Result<String, SessionError> {
    let Established {
        mut ws,
        mut channel,
        console_tcp,
        first_up,
    } = *match open(shared, stream, accepted, audit, registration)? {
        Opened::Relay(established) => established,
        Opened::Done(reason) => return Ok(reason),
    };
    audit.log_start();
    let mut counted = shared.metrics.session_started(
        KindDriver {
            kind: audit.kind.clone(),
            driver: audit.driver.clone(),
        },
        audit.started.elapsed(),
    );
    let result = relay(
        shared,
        &mut ws,
        &mut channel,
        &console_tcp,
        first_up,
        audit,
        registration,
    );
    // The channel goes before `console_tcp` closes: the driver may still send a TLS close_notify.
    drop(channel);
    drop(console_tcp);
    let end = result?;
    counted.end(&end, audit.up, audit.down);
    Ok(end.describe())
}

/// Phases 1 to 3. Kept out of line: its deep, large frames lie below the relay's stack pointer
/// once it returns, so [`unix::release_unused_stack`] can hand them console_tcp for the session's life.
#[inline(never)]
fn open(
    shared: &Shared,
    stream: TcpStream,
    accepted: Accepted,
    audit: &mut AuditRecord,
    registration: &Registration,
) -> Result<Opened, SessionError> {
    let config = &shared.config;
    // TLS and the request head must arrive within handshake_timeout of accept, however the
    // client spaces its bytes: the deadline is re-armed before every read.
    let deadline = Instant::now() + config.handshake_timeout;
    let _ = stream.set_nodelay(true);
    unix::enable_keepalive(stream.as_raw_fd());
    stream
        .set_nonblocking(false)
        .map_err(SessionError::Client)?;

    // 1. A trusted load balancer's PROXY header, TLS and the request head.
    audit.client = client_address::accept(
        &stream,
        accepted.peer,
        accepted.proxy_protocol,
        &config.trusted_proxies,
        deadline,
    )?;
    let mut browser = match &shared.tls {
        Some(tls) => BrowserStream::accept_tls(stream, tls.current(), deadline)
            .map_err(SessionError::ClientTls)?,
        None => BrowserStream::plain(stream, deadline),
    };
    let mut request = read_head(&mut browser, Vec::new(), audit)?;
    // The client a trusted proxy names counts towards max_connections_per_client.
    audit.client = client_address::forwarded(
        request.request.headers(),
        audit.client,
        &config.trusted_proxies,
    );
    if let Err(refusal) =
        registration.count_client(audit.client.ip, config.max_connections_per_client)
    {
        audit.request_seen = true;
        return Err(refuse(&mut browser, SessionError::Limit(refusal)));
    }
    if !http_upgrade::is_websocket(&request.request) && !refusal_check::is_check(&request.request) {
        let Some(root) = &config.web else {
            audit.request_seen = true;
            return Err(refuse(&mut browser, SessionError::NotUpgrade));
        };
        // Pages and their files, on a kept-alive connection, until it closes or upgrades.
        match serve_static(shared, &mut browser, root, request, audit, registration)? {
            AfterStatic::NotStatic(next) => request = *next,
            AfterStatic::Closed(reason) => return Ok(Opened::Done(reason)),
        }
    }
    audit.request_seen = true;
    if refusal_check::is_check(&request.request) {
        refusal_check::check(&request.request, shared).map_err(|e| refuse(&mut browser, e))?;
        let transport = browser.transport();
        http_upgrade::write_refusal(
            &mut browser,
            refusal_check::PASSED.0,
            refusal_check::PASSED.1,
            transport,
        )
        .map_err(SessionError::Client)?;
        return Ok(Opened::Done("refusal check passed".into()));
    }

    // 2. Everything about the request is checked before the token is looked up. Then the
    // token is looked up (not consumed), the driver chosen and the console connected; a
    // single-use token is consumed last, so that a request that does not get 101 leaves it.
    let upgrade = match http_upgrade::check_upgrade(&request.request) {
        Ok(upgrade) => upgrade,
        Err(e) => return Err(refuse(&mut browser, SessionError::BadUpgrade(e))),
    };
    if !http_upgrade::origin_allowed(&request.request, &config.allowed_origins) {
        let origin = request
            .request
            .headers()
            .get(http::header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .unwrap_or("?")
            .to_string();
        return Err(refuse(&mut browser, SessionError::OriginRefused(origin)));
    }
    let Some(token) = http_upgrade::token(&request.request) else {
        return Err(refuse(&mut browser, SessionError::NoToken));
    };
    audit.token_hash = token_hash(&token);
    // One budget for the lookup and the TCP connect together.
    let connect_deadline = Instant::now() + config.connect_timeout;
    // The lifetime layer (token::open) applies expiry, single use and the SPICE grace time.
    let looked_up = Instant::now();
    let console = shared.tokens.lookup(&token);
    shared.metrics.token_lookup(looked_up.elapsed(), &console);
    let console = match console {
        Ok(c) => c,
        Err(e) => return Err(refuse(&mut browser, SessionError::Token(e))),
    };
    audit.kind = console.kind.to_string();
    audit.target = console.address();
    audit.fields = console.audit.clone();
    let driver = match shared
        .drivers
        .for_console(console.kind, console.driver.as_deref())
    {
        Ok(driver) => driver,
        Err(e) => return Err(refuse(&mut browser, e)),
    };
    audit.driver = driver.name().to_string();
    let allowed = config.allowed_targets.as_ref();
    let console_tcp =
        match connect_console(&console.hypervisor, console.port, allowed, connect_deadline) {
            Ok(s) => s,
            Err(e) => return Err(refuse(&mut browser, e)),
        };
    // Only now, with nothing left that could refuse the request, is a single-use token used
    // up; if another request got it first, this one is refused and its console connection
    // closed unused.
    if console.single_use {
        if let Err(e) = shared.tokens.consume(&token, &console) {
            shared.metrics.token_store_error(&e);
            drop(console_tcp);
            return Err(refuse(&mut browser, SessionError::Token(e)));
        }
    }
    drop(token);

    // 3. Upgrade, then the driver's handshake, both within handshake_timeout.
    let handshake_deadline = Instant::now() + config.handshake_timeout;
    browser.set_deadline(Some(handshake_deadline));
    http_upgrade::write_upgrade(&mut browser, &upgrade).map_err(SessionError::Client)?;
    registration.upgraded();
    let mut ws = websocket::accept(browser, request.leftover);
    let _ = console_tcp.set_nodelay(true);
    unix::enable_keepalive(console_tcp.as_raw_fd());
    set_socket_deadline(&console_tcp, handshake_deadline).map_err(SessionError::Client)?;
    let session_request = ConsoleRequest {
        kind: console.kind,
        hypervisor: &console.hypervisor,
        port: console.port,
        username: console.username.as_deref(),
        password: console.password.as_deref(),
        session_id: registration.id(),
        handshake_timeout: config.handshake_timeout,
    };
    let watch = watchdog::arm(
        handshake_deadline,
        [ws.get_ref().socket().as_raw_fd(), console_tcp.as_raw_fd()],
    );
    let mut side = BrowserHandshake::new(&mut ws, handshake_deadline);
    let connected = driver.connect(&session_request, &mut side, &console_tcp);
    let first_up = side.into_pending();
    if watch.disarm() {
        return Err(SessionError::DriverHung {
            driver: driver.name().to_string(),
        });
    }
    let channel = match connected {
        Ok(channel) => channel,
        Err(failure) => {
            let e = SessionError::Driver {
                driver: driver.name().to_string(),
                failure,
            };
            let (code, reason) = e.close_frame(registration.id());
            websocket::close(&mut ws, code, &reason, GOODBYE_WAIT);
            return Err(e);
        }
    };
    log::debug!(
        "session {}: {} handshake done, relaying",
        audit.session_id,
        driver.name()
    );
    Ok(Opened::Relay(Box::new(Established {
        ws,
        channel,
        console_tcp,
        first_up,
    })))
}

/// Reads a request head, `buffered` its first bytes if some were already read; a malformed or
/// oversized head is refused (and noted in `audit`).
fn read_head(
    browser: &mut BrowserStream,
    buffered: Vec<u8>,
    audit: &mut AuditRecord,
) -> Result<UpgradeRequest, SessionError> {
    let error = match http_upgrade::read_request_after(browser, buffered) {
        Ok(request) => return Ok(request),
        Err(RequestError::Io(e)) => return Err(SessionError::Client(e)),
        Err(RequestError::TooLarge) => SessionError::HeadTooLarge,
        Err(e) => SessionError::BadRequest(e),
    };
    audit.request_seen = true;
    Err(refuse(browser, error))
}

/// How a connection's static requests ended.
enum AfterStatic {
    /// The next request on the connection is not for a file: it asks for a websocket, or it is
    /// a refusal check.
    NotStatic(Box<UpgradeRequest>),
    /// The connection closed; why.
    Closed(String),
}

/// Answers `request` and the requests that follow it on the kept-alive connection from `root`,
/// each answer within `handshake_timeout` of its request, until the connection closes or a
/// request asks for a websocket. Logged at debug: these are not console sessions.
fn serve_static(
    shared: &Shared,
    browser: &mut BrowserStream,
    root: &Path,
    mut request: UpgradeRequest,
    audit: &mut AuditRecord,
    registration: &Registration,
) -> Result<AfterStatic, SessionError> {
    let config = &shared.config;
    let keep_alive = config.keep_alive();
    loop {
        audit.assets += 1;
        let persistence = if registration.sessions().draining() {
            Persistence::Close
        } else {
            keep_alive.persistence(&request.request, audit.assets)
        };
        // The whole reply, however slowly the client reads, within its own deadline.
        browser.set_deadline(Some(Instant::now() + config.handshake_timeout));
        let status = static_files::serve(browser, root, &request.request, persistence)
            .map_err(SessionError::Client)?;
        let (method, path) = (request.request.method(), request.request.uri().path());
        log::debug!(
            "connection {}: {method} {path} {}",
            audit.session_id,
            status.as_u16()
        );
        let idle = match (persistence, keep_alive.idle) {
            (Persistence::KeepAlive, Some(idle)) => idle,
            _ => {
                return Ok(AfterStatic::Closed(format!(
                    "static file {path} {}",
                    status.as_u16()
                )))
            }
        };
        let next = {
            // Shutdown may close the connection while it waits.
            let Some(_waiting) = registration.idle() else {
                return Ok(AfterStatic::Closed("proxy shutting down".into()));
            };
            static_files::keep_alive::await_next_request(browser, request.leftover, idle)
                .map_err(SessionError::Client)?
        };
        let Some(first_bytes) = next else {
            return Ok(AfterStatic::Closed("closed while kept alive".into()));
        };
        // The next head, as the first, within handshake_timeout, however its bytes are spaced.
        browser.set_deadline(Some(Instant::now() + config.handshake_timeout));
        request = read_head(browser, first_bytes, audit)?;
        if http_upgrade::is_websocket(&request.request) || refusal_check::is_check(&request.request)
        {
            return Ok(AfterStatic::NotStatic(Box::new(request)));
        }
    }
}

/// Phase 4: relays until one side ends, then says goodbye to the browser.
fn relay(
    shared: &Shared,
    ws: &mut BrowserSocket,
    channel: &mut DriverChannel,
    console_tcp: &TcpStream,
    first_up: Vec<u8>,
    audit: &mut AuditRecord,
    registration: &Registration,
) -> Result<RelayEnd, SessionError> {
    // The handshakes' deep stack is not needed again: give it console_tcp first.
    unix::release_unused_stack();
    ws.get_mut().set_deadline(None);
    for sock in [ws.get_ref().socket(), console_tcp] {
        sock.set_nonblocking(true).map_err(SessionError::Client)?;
    }
    let outcome = relay::run(
        ws,
        channel,
        console_tcp,
        first_up,
        shared.config.idle_timeout,
        registration.sessions(),
    )
    .map_err(SessionError::Client)?;
    audit.up = outcome.up;
    audit.down = outcome.down;
    if let Some((code, reason)) = error::relay_goodbye(&outcome.end, registration.id()) {
        websocket::close(ws, code, &reason, GOODBYE_WAIT);
    }
    Ok(outcome.end)
}

/// Answers `error` with its HTTP refusal (if the client is still there) and returns it.
fn refuse(browser: &mut BrowserStream, error: SessionError) -> SessionError {
    if let Some((status, reason)) = error.http_refusal() {
        let _ = browser.socket().set_nonblocking(false);
        browser.set_deadline(Some(Instant::now() + GOODBYE_WAIT));
        let transport = browser.transport();
        let _ = http_upgrade::write_refusal(browser, status, reason, transport);
    }
    error
}

/// Connects to the console before `deadline`, resolving its name on a helper thread so that the
/// name lookup too is bounded. With `allowed` (`allowed_targets`), the name and every address
/// it resolved to are checked first, and only checked addresses are connected to.
fn connect_console(
    host: &str,
    port: u16,
    allowed: Option<&AllowedTargets>,
    deadline: Instant,
) -> Result<TcpStream, SessionError> {
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => resolve(host, port, deadline)?,
    };
    if let Some(allowed) = allowed {
        let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
        allowed.check(host, &ips)?;
    }
    let mut last = None;
    for addr in addrs {
        let left = remaining(deadline).map_err(|_| SessionError::ConsoleTimeout)?;
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) if is_timeout(&e) => SessionError::ConsoleTimeout,
        Some(source) => SessionError::ConsoleUnreachable {
            address: format!("{host}:{port}"),
            source,
        },
        None => SessionError::ConsoleUnreachable {
            address: host.to_string(),
            source: io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address"),
        },
    })
}

fn resolve(host: &str, port: u16, deadline: Instant) -> Result<Vec<SocketAddr>, SessionError> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let name = host.to_string();
    std::thread::Builder::new()
        .name("resolve".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let _ = tx.send((name.as_str(), port).to_socket_addrs().map(Vec::from_iter));
        })
        .map_err(|source| SessionError::ConsoleUnreachable {
            address: host.to_string(),
            source,
        })?;
    let left = remaining(deadline).map_err(|_| SessionError::ConsoleTimeout)?;
    match rx.recv_timeout(left) {
        Ok(Ok(addrs)) => Ok(addrs),
        Ok(Err(source)) => Err(SessionError::ConsoleUnreachable {
            address: host.to_string(),
            source,
        }),
        Err(_) => Err(SessionError::ConsoleTimeout),
    }
}
