//! The set of live sessions: their count and the limits on it, their numbers, and their
//! browser sockets, so that shutdown can wake and close them.
//!
//! Three limits are checked when a connection is accepted, before a thread is started for it:
//! `max_connections` in all, `max_handshakes` that have not finished the websocket upgrade
//! (unauthenticated connections cannot crowd out working sessions), and
//! `max_connections_per_client` from one address (one address cannot take every place). A
//! connection from a trusted proxy is counted towards its client's address instead, once the
//! PROXY or forwarded header has named it ([`Registration::count_client`]).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::unix;

/// Shared by the accept loop and every session thread.
#[derive(Default)]
pub struct Sessions {
    active: AtomicUsize,
    next_id: AtomicU64,
    closing: AtomicBool,
    fronts: Mutex<HashMap<u64, RawFd>>,
    /// Sessions ended since the memory was last handed back ([`Sessions::take_ended`]).
    ended: AtomicUsize,
    /// Connections still in their handshake (TLS, request, token, upgrade).
    handshaking: AtomicUsize,
    /// Live connections per client address.
    per_client: Mutex<HashMap<IpAddr, usize>>,
    /// Kept-alive connections waiting for their next request, and whether shutdown began.
    idle: Mutex<Idle>,
}

/// The connections that shutdown may close at once: they wait between two requests.
#[derive(Default)]
struct Idle {
    /// Their session numbers.
    waiting: HashSet<u64>,
    /// Shutdown began: no connection waits any more.
    draining: bool,
}

/// The limits checked at accept.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `max_connections`: live connections in all.
    pub connections: usize,
    /// `max_handshakes`: connections that have not finished the upgrade.
    pub handshakes: usize,
    /// `max_connections_per_client`: live connections from one address; `None`: no limit.
    pub per_client: Option<usize>,
}

/// Which limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `max_connections` are live.
    #[error("max_connections ({0}) reached")]
    Connections(usize),
    /// `max_handshakes` connections are still in their handshake.
    #[error("max_handshakes ({0}) connections are still in their handshake")]
    Handshakes(usize),
    /// The client's address already holds `max_connections_per_client` connections.
    #[error("max_connections_per_client ({0}) reached for this address")]
    PerClient(usize),
}

/// A session's place in [`Sessions`]; dropping it frees the place.
pub struct Registration {
    sessions: Arc<Sessions>,
    id: u64,
    /// The address counted towards `max_connections_per_client`, once known.
    client: Mutex<Option<IpAddr>>,
    handshaking: AtomicBool,
}

impl Sessions {
    /// An empty set.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Takes a place for a new connection from `client` with browser socket `fd`, or says
    /// which of `limits` refuses it. `client` is `None` for a connection from a trusted proxy:
    /// its client is counted later, by [`Registration::count_client`].
    pub fn register(
        self: &Arc<Self>,
        fd: RawFd,
        client: Option<IpAddr>,
        limits: Limits,
    ) -> Result<Registration, Refusal> {
        let take = |counter: &AtomicUsize, max: usize| {
            counter
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < max).then_some(n + 1)
                })
                .is_ok()
        };
        if !take(&self.active, limits.connections) {
            return Err(Refusal::Connections(limits.connections));
        }
        if !take(&self.handshaking, limits.handshakes) {
            self.active.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Handshakes(limits.handshakes));
        }
        if let Some(client) = client {
            if let Err(refusal) = self.take_client_place(client, limits.per_client) {
                self.handshaking.fetch_sub(1, Ordering::AcqRel);
                self.active.fetch_sub(1, Ordering::AcqRel);
                return Err(refusal);
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.fronts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, fd);
        Ok(Registration {
            sessions: Arc::clone(self),
            id,
            client: Mutex::new(client),
            handshaking: AtomicBool::new(true),
        })
    }

    /// Counts one more connection from `client`, unless it has `max` already.
    fn take_client_place(&self, client: IpAddr, max: Option<usize>) -> Result<(), Refusal> {
        let mut per_client = self.per_client.lock().unwrap_or_else(|e| e.into_inner());
        let count = per_client.entry(client).or_insert(0);
        if max.is_some_and(|max| *count >= max) {
            if *count == 0 {
                per_client.remove(&client);
            }
            return Err(Refusal::PerClient(max.unwrap_or(0)));
        }
        *count += 1;
        Ok(())
    }

    /// Connections still in their handshake.
    pub fn handshaking(&self) -> usize {
        self.handshaking.load(Ordering::Acquire)
    }

    /// Live sessions.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Whether the proxy is closing every session (the drain time is over).
    pub fn closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// How many sessions ended since the last call (for the daemon's memory trimming).
    pub fn take_ended(&self) -> usize {
        self.ended.swap(0, Ordering::AcqRel)
    }

    /// Shutdown begins: closes the kept-alive connections that wait between two requests (they
    /// would otherwise hold the drain until their idle time ends) by shutting their read side,
    /// and keeps every later one from waiting ([`Registration::idle`]).
    pub fn close_idle(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.draining = true;
        let fronts = self.fronts.lock().unwrap_or_else(|e| e.into_inner());
        for id in &idle.waiting {
            if let Some(fd) = fronts.get(id) {
                unix::shutdown(*fd, unix::Shutdown::Read);
            }
        }
    }

    /// Whether shutdown began ([`Sessions::close_idle`]): answers close their connection.
    pub fn draining(&self) -> bool {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).draining
    }

    /// Ends every session: marks the set closing and shuts the read side of each browser socket,
    /// which wakes the session's poll; the session then sends Close 1001 and ends.
    pub fn close_all(&self) {
        self.closing.store(true, Ordering::Release);
        let fronts = self.fronts.lock().unwrap_or_else(|e| e.into_inner());
        // A session removes its entry (under this lock) as its last step, just after its
        // sockets close; in that gap a reused number can only belong to another session that is
        // being closed too.
        for fd in fronts.values() {
            unix::shutdown(*fd, unix::Shutdown::Read);
        }
    }
}

impl Registration {
    /// The session's number.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The set this session belongs to.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// The connection waits for its next request (keep-alive) until the guard is dropped;
    /// meanwhile shutdown may close it at once. `None` when shutdown already began: close the
    /// connection instead of waiting.
    pub fn idle(&self) -> Option<IdleWait<'_>> {
        let mut idle = self.sessions.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.draining {
            return None;
        }
        idle.waiting.insert(self.id);
        Some(IdleWait { registration: self })
    }

    /// Counts this connection towards `client`'s `max_connections_per_client` (`max`), if it
    /// was registered without a client (it came from a trusted proxy); a connection already
    /// counted stays as it is.
    pub fn count_client(&self, client: IpAddr, max: Option<usize>) -> Result<(), Refusal> {
        let mut counted = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if counted.is_none() {
            self.sessions.take_client_place(client, max)?;
            *counted = Some(client);
        }
        Ok(())
    }

    /// The websocket upgrade is done: the connection no longer counts towards `max_handshakes`.
    pub fn upgraded(&self) {
        if self.handshaking.swap(false, Ordering::AcqRel) {
            self.sessions.handshaking.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A kept-alive connection waiting for its next request; dropping it ends the wait.
pub struct IdleWait<'a> {
    registration: &'a Registration,
}

impl Drop for IdleWait<'_> {
    fn drop(&mut self) {
        let sessions = &self.registration.sessions;
        let mut idle = sessions.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.waiting.remove(&self.registration.id);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.sessions
            .fronts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
        self.upgraded();
        // `client` is read before `per_client` is locked: `count_client` takes them in that
        // order too.
        let client = *self.client.get_mut().unwrap_or_else(|e| e.into_inner());
        {
            let mut per_client = self
                .sessions
                .per_client
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(client) = client {
                if let Some(count) = per_client.get_mut(&client) {
                    *count -= 1;
                    if *count == 0 {
                        per_client.remove(&client);
                    }
                }
            }
        }
        self.sessions.active.fetch_sub(1, Ordering::AcqRel);
        self.sessions.ended.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        connections: 4,
        handshakes: 3,
        per_client: Some(2),
    };

    #[test]
    fn each_limit_refuses_with_its_own_reason_and_frees_on_drop() {
        let sessions = Sessions::new();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let c: IpAddr = "192.0.2.3".parse().unwrap();
        let a1 = sessions.register(10, Some(a), LIMITS).unwrap();
        let _a2 = sessions.register(11, Some(a), LIMITS).unwrap();
        assert_eq!(
            sessions.register(12, Some(a), LIMITS).err(),
            Some(Refusal::PerClient(2))
        );
        let b1 = sessions.register(13, Some(b), LIMITS).unwrap();
        assert_eq!(
            sessions.register(14, Some(c), LIMITS).err(),
            Some(Refusal::Handshakes(3))
        );
        a1.upgraded();
        b1.upgraded();
        let _c1 = sessions.register(15, Some(c), LIMITS).unwrap();
        assert_eq!(
            sessions.register(16, Some(c), LIMITS).err(),
            Some(Refusal::Connections(4))
        );
        assert_eq!((sessions.active(), sessions.handshaking()), (4, 2));
        drop(a1);
        assert_eq!((sessions.active(), sessions.handshaking()), (3, 2));
        let _a3 = sessions.register(17, Some(a), LIMITS).unwrap();
        drop(b1);
        assert!(!sessions.per_client.lock().unwrap().contains_key(&b));
    }

    #[test]
    fn a_trusted_proxys_connection_counts_for_its_client() {
        let sessions = Sessions::new();
        let client: IpAddr = "203.0.113.9".parse().unwrap();
        let limits = Limits {
            per_client: Some(1),
            ..LIMITS
        };
        // Two connections from the balancer: neither counts for the balancer's address.
        let first = sessions.register(10, None, limits).unwrap();
        let second = sessions.register(11, None, limits).unwrap();
        first.count_client(client, limits.per_client).unwrap();
        assert_eq!(
            second.count_client(client, limits.per_client),
            Err(Refusal::PerClient(1))
        );
        drop(first);
        second.count_client(client, limits.per_client).unwrap();
        drop(second);
        assert!(sessions.per_client.lock().unwrap().is_empty());
    }
}
