//! systemd integration: state notifications for `Type=notify` (READY once the listeners are
//! bound and the drivers loaded, RELOADING/READY around SIGHUP, STOPPING), the watchdog
//! (`WatchdogSec=`: WATCHDOG=1 at half the interval), and socket activation
//! (`consolegate.socket`: the listening sockets come from `LISTEN_FDS`).
//!
//! The protocol is the `sd-notify` crate's. Without systemd (no `NOTIFY_SOCKET`, no
//! `WATCHDOG_USEC`, no `LISTEN_FDS` for this process) nothing here does anything and the
//! daemon binds its own listeners.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{FromRawFd, RawFd};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// Why the sockets systemd passed cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ActivationError {
    /// `LISTEN_PID` or `LISTEN_FDS` is malformed.
    #[error("cannot read the sockets passed by systemd (LISTEN_FDS): {0}")]
    Environment(io::Error),
    /// A passed descriptor is not a listening TCP socket.
    #[error(
        "descriptor {fd} passed by systemd is not a listening TCP socket ({detail}): give \
         consolegate.socket only ListenStream= lines with addresses or ports"
    )]
    NotTcpListener {
        /// The descriptor number.
        fd: RawFd,
        /// What it is instead.
        detail: String,
    },
    /// A passed socket listens on an address the configuration does not name.
    #[error(
        "systemd passed a socket listening on {addr}, which is not in listen ({listen}): make \
         ListenStream= in consolegate.socket and listen in consolegate.conf name the same \
         addresses"
    )]
    NotInListen {
        /// The socket's address.
        addr: SocketAddr,
        /// The configured `listen` addresses.
        listen: String,
    },
}

/// The listening sockets systemd passed to this process (none without socket activation),
/// each checked to be a listening TCP socket on one of the `listen` addresses, and set
/// non-blocking for the accept loop. Call it once, at start-up: it takes ownership of the
/// descriptors.
pub fn passed_listeners(listen: &[SocketAddr]) -> Result<Vec<TcpListener>, ActivationError> {
    let fds = sd_notify::listen_fds().map_err(ActivationError::Environment)?;
    let mut out = Vec::with_capacity(fds.len());
    for fd in fds {
        check_listening_stream(fd)?;
        // SAFETY: systemd passed `fd` to this process for it to own (sd_listen_fds(3)); it is
        // taken here once, at start-up, and nothing else in the process refers to it.
        let listener = unsafe { TcpListener::from_raw_fd(fd) };
        let addr = listener
            .local_addr()
            .map_err(|e| ActivationError::NotTcpListener {
                fd,
                detail: format!("no TCP address: {e}"),
            })?;
        if !listen.iter().any(|wanted| covers(addr, *wanted)) {
            return Err(ActivationError::NotInListen {
                addr,
                listen: listen
                    .iter()
                    .map(SocketAddr::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        listener
            .set_nonblocking(true)
            .map_err(|e| ActivationError::NotTcpListener {
                fd,
                detail: e.to_string(),
            })?;
        out.push(listener);
    }
    Ok(out)
}

/// Whether a socket listening on `passed` serves the configured address `wanted`: the same
/// address, or systemd's dual-stack `[::]:PORT` (a bare `ListenStream=PORT`) for
/// `0.0.0.0:PORT`.
pub fn covers(passed: SocketAddr, wanted: SocketAddr) -> bool {
    passed == wanted
        || (passed.port() == wanted.port()
            && passed.ip().is_unspecified()
            && passed.is_ipv6()
            && wanted.ip().is_unspecified())
}

fn check_listening_stream(fd: RawFd) -> Result<(), ActivationError> {
    let option = |name: libc::c_int| -> io::Result<libc::c_int> {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt(2) writes at most `len` bytes into `value`, which is a c_int of
        // that size; an fd that is not a socket only makes it fail.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                name,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if rc == 0 {
            Ok(value)
        } else {
            Err(io::Error::last_os_error())
        }
    };
    let not = |detail: String| ActivationError::NotTcpListener { fd, detail };
    let kind = option(libc::SO_TYPE).map_err(|e| not(format!("not a socket: {e}")))?;
    if kind != libc::SOCK_STREAM {
        return Err(not("not a stream socket".into()));
    }
    let listening = option(libc::SO_ACCEPTCONN).map_err(|e| not(e.to_string()))?;
    if listening == 0 {
        return Err(not("not listening".into()));
    }
    Ok(())
}

/// Tells systemd what the daemon is doing, and pings its watchdog. Every call is a no-op
/// when the daemon does not run under systemd's notify protocol.
#[derive(Debug)]
pub struct Notifier {
    /// How often to ping: half of `WATCHDOG_USEC`, or `None` without a watchdog.
    ping_every: Option<Duration>,
    next_ping: Instant,
}

impl Notifier {
    /// Reads the watchdog interval from the environment (`WATCHDOG_USEC`, `WATCHDOG_PID`).
    pub fn from_env() -> Self {
        let ping_every = sd_notify::watchdog_enabled().map(|d| d / 2);
        if let Some(every) = ping_every {
            log::info!("systemd watchdog: pinging every {every:?}");
        }
        Self {
            ping_every,
            next_ping: Instant::now(),
        }
    }

    /// READY=1 with a status line: the listeners are bound and the drivers loaded.
    pub fn ready(&mut self, status: &str) {
        send(&[NotifyState::Ready, NotifyState::Status(status)]);
        self.ping_if_due();
    }

    /// RELOADING=1 (with the monotonic time systemd asks for): SIGHUP's reload begins; call
    /// [`Notifier::ready`] when it is done.
    pub fn reloading(&self) {
        let mut states = vec![NotifyState::Reloading];
        if let Ok(now) = NotifyState::monotonic_usec_now() {
            states.push(now);
        }
        send(&states);
    }

    /// STOPPING=1: the daemon stopped accepting and drains its sessions.
    pub fn stopping(&self, status: &str) {
        send(&[NotifyState::Stopping, NotifyState::Status(status)]);
    }

    /// WATCHDOG=1 if the watchdog is on and half its interval has passed since the last ping.
    pub fn ping_if_due(&mut self) {
        let Some(every) = self.ping_every else {
            return;
        };
        let now = Instant::now();
        if now >= self.next_ping {
            send(&[NotifyState::Watchdog]);
            self.next_ping = now + every;
        }
    }

    /// How long the accept loop may sleep: `longest`, or less when the watchdog is due sooner.
    pub fn poll_timeout(&self, longest: Duration) -> Duration {
        match self.ping_every {
            Some(_) => longest.min(self.next_ping.saturating_duration_since(Instant::now())),
            None => longest,
        }
    }
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        log::warn!("cannot notify systemd (NOTIFY_SOCKET): {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dual_stack_socket_covers_the_ipv4_wildcard_only() {
        let any6: SocketAddr = "[::]:6080".parse().unwrap();
        assert!(covers(any6, "0.0.0.0:6080".parse().unwrap()));
        assert!(covers(any6, any6));
        assert!(!covers(any6, "0.0.0.0:6081".parse().unwrap()));
        assert!(!covers(any6, "127.0.0.1:6080".parse().unwrap()));
        let lo: SocketAddr = "127.0.0.1:6080".parse().unwrap();
        assert!(covers(lo, lo));
        assert!(!covers(lo, "0.0.0.0:6080".parse().unwrap()));
    }

    #[test]
    fn without_a_watchdog_the_loop_sleeps_as_long_as_it_likes() {
        let n = Notifier {
            ping_every: None,
            next_ping: Instant::now(),
        };
        assert_eq!(
            n.poll_timeout(Duration::from_secs(2)),
            Duration::from_secs(2)
        );
        let n = Notifier {
            ping_every: Some(Duration::from_millis(100)),
            next_ping: Instant::now() + Duration::from_millis(100),
        };
        assert!(n.poll_timeout(Duration::from_secs(2)) <= Duration::from_millis(100));
    }
}
