//! The set of live sessions: their count (for `max_connections`), their numbers, and their
//! browser sockets, so that shutdown can wake and close them.

use std::collections::HashMap;
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
}

/// A session's place in [`Sessions`]; dropping it frees the place.
pub struct Registration {
    sessions: Arc<Sessions>,
    id: u64,
}

impl Sessions {
    /// An empty set.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Takes a place for a new session with browser socket `fd`, or `None` if `max` are live.
    pub fn register(self: &Arc<Self>, fd: RawFd, max: usize) -> Option<Registration> {
        let taken = self
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        if taken.is_err() {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.fronts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, fd);
        Some(Registration {
            sessions: Arc::clone(self),
            id,
        })
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
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.sessions
            .fronts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
        self.sessions.active.fetch_sub(1, Ordering::AcqRel);
        self.sessions.ended.fetch_add(1, Ordering::AcqRel);
    }
}
