//! What a process holds, from `/proc`: threads, file descriptors and resident memory. The
//! resource-discipline tests compare these before and after many sessions.

use std::fs;

/// Lowers the descriptor limit (`RLIMIT_NOFILE`) of the running process `pid` to `limit`.
pub fn set_limit(pid: i32, limit: u64) {
    let new = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: `new` is a valid rlimit; the old value is not asked for (NULL).
    let rc = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, &new, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit({pid}): {}", std::io::Error::last_os_error());
}

/// The number of threads of `pid` (entries of `/proc/PID/task`).
pub fn threads(pid: i32) -> usize {
    count(&format!("/proc/{pid}/task"))
}

/// The number of open file descriptors of `pid` (entries of `/proc/PID/fd`).
pub fn fds(pid: i32) -> usize {
    count(&format!("/proc/{pid}/fd"))
}

/// The resident set size of `pid` in KiB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kib(pid: i32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

fn count(dir: &str) -> usize {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {dir}: {e}"))
        .count()
}

/// Threads and fds of a process at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Entries of `/proc/PID/task`.
    pub threads: usize,
    /// Entries of `/proc/PID/fd`.
    pub fds: usize,
}

/// The current usage of `pid`.
pub fn usage(pid: i32) -> Usage {
    Usage {
        threads: threads(pid),
        fds: fds(pid),
    }
}

/// The usage of `pid` once it holds still: two samples 200 ms apart agree (at most 5 s).
pub fn settled(pid: i32) -> Usage {
    let mut last = usage(pid);
    for _ in 0..25 {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let now = usage(pid);
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

/// Waits up to `timeout` for `pid` to be back at (or below) `baseline`; the last usage seen
/// when it is not.
pub fn back_to(pid: i32, baseline: Usage, timeout: std::time::Duration) -> Result<(), Usage> {
    let ok = crate::wait::until_true(timeout, || {
        let now = usage(pid);
        now.threads <= baseline.threads && now.fds <= baseline.fds
    });
    if ok {
        Ok(())
    } else {
        Err(usage(pid))
    }
}
