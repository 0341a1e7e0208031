//! The proxy's few direct system calls, each behind a safe function: shutting down a socket
//! that another thread owns, TCP keepalive, and handing freed heap memory back to the kernel.

use std::os::fd::RawFd;

/// Which directions [`shutdown`] closes.
#[derive(Debug, Clone, Copy)]
pub enum Shutdown {
    /// Reads end: wakes a reader or poller with end of stream; writes still work.
    Read,
    /// Both directions.
    Both,
}

/// shutdown(2) on a socket descriptor that another thread owns. The caller must know the
/// descriptor is still open (the session registries guarantee it: an owner deregisters before
/// it closes). Errors (not a socket, already closed) are ignored: this is a wake-up call.
pub fn shutdown(fd: RawFd, how: Shutdown) {
    let how = match how {
        Shutdown::Read => libc::SHUT_RD,
        Shutdown::Both => libc::SHUT_RDWR,
    };
    // SAFETY: shutdown(2) reads no memory of ours; on a stale descriptor it fails harmlessly
    // with EBADF or ENOTSOCK.
    unsafe { libc::shutdown(fd, how) };
}

/// Returns the free pages of every malloc arena to the kernel (glibc's malloc_trim(3)). With
/// a thread per session, glibc spreads allocations over many arenas and keeps their freed
/// memory; without this, the proxy's memory stays at its peak after sessions end.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own arenas under their locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Seconds of silence before the first keepalive probe.
pub const KEEPALIVE_IDLE_SECS: i32 = 60;
/// Seconds between probes.
pub const KEEPALIVE_INTERVAL_SECS: i32 = 10;
/// Unanswered probes before the kernel declares the peer gone.
pub const KEEPALIVE_PROBES: i32 = 6;

/// Turns on TCP keepalive with the intervals above, so a peer that vanished (a laptop lid
/// closed, a hypervisor rebooted) ends its session within about two minutes instead of the
/// kernel's default two hours. Best effort: a failure leaves the socket as it was.
pub fn enable_keepalive(fd: RawFd) {
    let options = [
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1),
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, KEEPALIVE_IDLE_SECS),
        (
            libc::IPPROTO_TCP,
            libc::TCP_KEEPINTVL,
            KEEPALIVE_INTERVAL_SECS,
        ),
        (libc::IPPROTO_TCP, libc::TCP_KEEPCNT, KEEPALIVE_PROBES),
    ];
    for (level, name, value) in options {
        // SAFETY: the option value is a valid c_int on our stack for the call, and its size is
        // passed; setsockopt does not keep the pointer.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    }
}
