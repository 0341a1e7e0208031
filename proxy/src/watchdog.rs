//! The watchdog for drivers that ignore their handshake deadline. A driver's `connect` runs on
//! the session thread and the host cannot interrupt it; a driver that sleeps or loops past
//! `handshake_timeout` would hold the browser waiting. One shared thread watches every armed
//! handshake and, at its deadline plus a grace period, shuts down both of the session's sockets
//! so that the browser sees the connection end and a driver blocked on either socket returns.

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::unix;

/// Time a driver gets beyond its deadline before the watchdog acts.
pub const GRACE: Duration = Duration::from_millis(250);

#[derive(Default)]
struct State {
    next_id: u64,
    armed: BTreeMap<u64, Armed>,
}

struct Armed {
    deadline: Instant,
    fds: [RawFd; 2],
    fired: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

/// An armed handshake; [`Guard::disarm`] (or drop) ends the watch.
pub struct Guard {
    id: u64,
}

fn shared() -> &'static Arc<Shared> {
    static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();
    SHARED.get_or_init(|| {
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            changed: Condvar::new(),
        });
        let watcher = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("watchdog".into())
            .stack_size(64 * 1024)
            .spawn(move || watch(&watcher));
        if let Err(e) = spawned {
            log::error!(
                "cannot start the handshake watchdog: {e}; hung drivers will not be cut off"
            );
        }
        shared
    })
}

/// Watches a handshake on `fds` (the browser's and the console's sockets) until `deadline`.
/// The caller must disarm before it closes either socket.
pub fn arm(deadline: Instant, fds: [RawFd; 2]) -> Guard {
    let shared = shared();
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    state.next_id += 1;
    let id = state.next_id;
    state.armed.insert(
        id,
        Armed {
            deadline: deadline + GRACE,
            fds,
            fired: false,
        },
    );
    shared.changed.notify_one();
    Guard { id }
}

impl Guard {
    /// Ends the watch; returns whether the watchdog had to shut the sockets down.
    pub fn disarm(self) -> bool {
        let fired = remove(self.id);
        std::mem::forget(self);
        fired
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        remove(self.id);
    }
}

fn remove(id: u64) -> bool {
    let shared = shared();
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    state.armed.remove(&id).is_some_and(|a| a.fired)
}

fn watch(shared: &Shared) {
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        for armed in state.armed.values_mut().filter(|a| !a.fired) {
            if armed.deadline <= now {
                // The fds are open: a session disarms (under this lock) before it closes them.
                for fd in armed.fds {
                    unix::shutdown(fd, unix::Shutdown::Both);
                }
                armed.fired = true;
            } else {
                next = Some(next.map_or(armed.deadline, |n| n.min(armed.deadline)));
            }
        }
        state = match next {
            Some(at) => {
                let wait = at.saturating_duration_since(Instant::now());
                shared
                    .changed
                    .wait_timeout(state, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => shared
                .changed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner()),
        };
    }
}
