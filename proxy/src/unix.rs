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

/// Bytes below the current stack pointer that are never released (signal frames, the calls
/// made from here).
const STACK_KEEP_BELOW_SP: usize = 16 * 1024;

/// Hands the calling thread's unused stack pages back to the kernel. A session's TLS and
/// driver handshakes run deep (RSA signing, certificate parsing) and leave tens of KiB of stack
/// dirty that the relay never touches again; with one thread per session that is most of an
/// idle session's memory. Called once, just before the relay. The pages below the stack
/// pointer (minus a margin) are discarded with `MADV_DONTNEED`; if they are used again, the
/// kernel maps fresh zero pages. Does nothing where the stack bounds are unknown.
pub fn release_unused_stack() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let marker = 0u8;
        let sp = std::ptr::addr_of!(marker) as usize;
        let Some((low, _high)) = stack_bounds() else {
            return;
        };
        let page = 4096usize;
        let end = sp.saturating_sub(STACK_KEEP_BELOW_SP) & !(page - 1);
        // Skip the lowest page too: it may border the guard page.
        let start = (low + page + page - 1) & !(page - 1);
        if end > start {
            // SAFETY: [start, end) lies inside this thread's stack mapping, entirely below the
            // current stack pointer minus a margin, so no live frame uses it; MADV_DONTNEED on
            // private anonymous memory only makes later reads see zero pages.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        }
    }
}

/// The calling thread's stack as `(lowest address, highest address)`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn stack_bounds() -> Option<(usize, usize)> {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    let mut addr: *mut libc::c_void = std::ptr::null_mut();
    let mut size: libc::size_t = 0;
    // SAFETY: pthread_getattr_np initialises attr for the calling thread; it is read only
    // after success and destroyed exactly once.
    unsafe {
        if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
            return None;
        }
        let ok = libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size) == 0;
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        ok.then(|| (addr as usize, addr as usize + size))
    }
}
