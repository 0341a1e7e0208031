//! Fake hypervisor consoles for the timeout, back-pressure and fault tests: plain TCP listeners
//! on a leased port that misbehave on purpose ([`Behaviour`]), or run a test's own script on
//! each connection ([`Backend::serve`]). Each runs an accept thread until dropped.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::ports::{self, PortLease};

/// What a [`Backend`] does with each connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Accepts and keeps the connection open, never writing a byte.
    Silent,
    /// Writes 64 KiB chunks as fast as the connection takes them, forever.
    Flood,
    /// Writes back every byte it reads, until the peer closes.
    Echo,
    /// Never accepts, and its accept queue is full, so a new connection's SYN goes
    /// unanswered and `connect` hangs until the connecting side gives up.
    Unanswered,
}

/// What [`Backend::serve`] runs on each accepted connection, on a thread of its own.
pub type Handler = Arc<dyn Fn(TcpStream) + Send + Sync>;

/// A misbehaving TCP server.
#[derive(Debug)]
pub struct Backend {
    lease: PortLease,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Backend {
    /// Listens on 127.0.0.1 and serves every connection with `behaviour`.
    pub fn start(behaviour: Behaviour) -> Self {
        Self::start_on(ports::port(), behaviour)
    }

    /// Like [`Backend::start`], on the port of `lease` (a console that comes up on a port a
    /// token already names).
    pub fn start_on(lease: PortLease, behaviour: Behaviour) -> Self {
        let handler: Option<Handler> = match behaviour {
            // Flood is served by the accept loop itself: it counts what it writes.
            Behaviour::Silent | Behaviour::Flood => None,
            Behaviour::Echo => Some(Arc::new(echo)),
            Behaviour::Unanswered => {
                let listener = listen(&lease);
                return Self::unanswered(lease, listener);
            }
        };
        Self::accepting(lease, handler, behaviour == Behaviour::Flood, true)
    }

    /// Listens on 127.0.0.1 and runs `handler` on each accepted connection, on its own
    /// thread. The handler owns the connection: the backend keeps no clone (so that closing
    /// it, or [`reset`], really ends it) and does not shut it down when dropped.
    pub fn serve(handler: impl Fn(TcpStream) + Send + Sync + 'static) -> Self {
        Self::accepting(ports::port(), Some(Arc::new(handler)), false, false)
    }

    /// The accept loop on `lease`'s port: floods each connection when `floods`, else runs
    /// `handler` on it (if any) on a thread of its own; keeps a clone of each connection, to
    /// shut it down when dropped, when `keep`.
    fn accepting(lease: PortLease, handler: Option<Handler>, floods: bool, keep: bool) -> Self {
        let listener = listen(&lease);
        let backend = Self {
            lease,
            stop: Arc::new(AtomicBool::new(false)),
            accepted: Arc::new(AtomicU64::new(0)),
            written: Arc::new(AtomicU64::new(0)),
            conns: Arc::new(Mutex::new(Vec::new())),
        };
        let (stop, accepted, written, conns) = (
            backend.stop.clone(),
            backend.accepted.clone(),
            backend.written.clone(),
            backend.conns.clone(),
        );
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        accepted.fetch_add(1, Ordering::Relaxed);
                        let _ = conn.set_nonblocking(false);
                        if keep {
                            conns
                                .lock()
                                .expect("conns")
                                .push(conn.try_clone().expect("clone"));
                        }
                        if floods {
                            let (stop, written) = (stop.clone(), written.clone());
                            thread::spawn(move || flood(conn, &stop, &written));
                        } else if let Some(handler) = handler.clone() {
                            thread::spawn(move || handler(conn));
                        }
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        backend
    }

    /// Shrinks the listener's backlog to the minimum and fills it, then keeps the listener
    /// (never accepting) and the queued connections for its lifetime.
    fn unanswered(lease: PortLease, listener: TcpListener) -> Self {
        // SAFETY: listen(2) on a socket we own, which is already listening: Linux then only
        // changes its backlog.
        let rc = unsafe { libc::listen(listener.as_raw_fd(), 0) };
        assert_eq!(rc, 0, "listen(fd, 0): {}", std::io::Error::last_os_error());
        let addr = listener.local_addr().expect("local_addr");
        let mut queued = Vec::new();
        while let Ok(conn) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            queued.push(conn);
            assert!(
                queued.len() < 64,
                "the backlog of the unanswered backend never fills"
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let keep = stop.clone();
        thread::spawn(move || {
            let _listener = listener;
            while !keep.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(50));
            }
        });
        Self {
            lease,
            stop,
            accepted: Arc::new(AtomicU64::new(0)),
            written: Arc::new(AtomicU64::new(0)),
            conns: Arc::new(Mutex::new(queued)),
        }
    }

    /// `127.0.0.1:PORT`, as a token file target.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.lease.port())
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Bytes the flood connections have written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for conn in self.conns.lock().expect("conns").drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

/// A non-blocking listener on the leased port.
fn listen(lease: &PortLease) -> TcpListener {
    let listener = TcpListener::bind(("127.0.0.1", lease.port()))
        .unwrap_or_else(|e| panic!("cannot bind the fake backend: {e}"));
    listener.set_nonblocking(true).expect("set_nonblocking");
    listener
}

/// Writes `text` through a websocket whose console is an [`Behaviour::Echo`] backend and
/// asserts that it comes back unchanged.
pub fn assert_echoes(ws: &mut crate::ws::Ws, text: &[u8]) {
    ws.write_all(text).expect("write to the echo session");
    let mut back = vec![0u8; text.len()];
    ws.read_exact(&mut back).expect("read the echo");
    assert_eq!(back, text, "the echo differs");
}

/// Closes `conn` with a TCP reset (RST) instead of a FIN: `SO_LINGER` with a zero timeout,
/// then close. `conn` must be the connection's only descriptor.
pub fn reset(conn: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt(2) on a socket we own, with a correctly sized `linger`.
    let rc = unsafe {
        libc::setsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
    drop(conn);
}

/// Writes back what `conn` sends until it closes or fails.
fn echo(mut conn: TcpStream) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn flood(mut conn: TcpStream, stop: &AtomicBool, written: &AtomicU64) {
    let chunk = vec![0x5au8; 64 * 1024];
    let _ = conn.set_write_timeout(Some(Duration::from_millis(200)));
    while !stop.load(Ordering::Relaxed) {
        match conn.write(&chunk) {
            Ok(0) => return,
            Ok(n) => {
                written.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}
