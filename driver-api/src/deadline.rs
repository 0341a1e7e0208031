//! Deadlines for blocking socket I/O, shared by the proxy and the drivers (so both measure the
//! time left and recognise a timed-out read the same way): a phase's deadline is an
//! [`Instant`], and every blocking call gets the time left until it as its socket timeout.

use std::io;
use std::time::{Duration, Instant};

/// The time left until `deadline`, or `None` once it has passed (never a zero duration, which
/// a socket timeout would refuse).
pub fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|left| !left.is_zero())
}

/// Whether an I/O error from a socket with timeouts means the time ran out (Linux reports
/// `EAGAIN` for `SO_RCVTIMEO`, which std calls `WouldBlock`).
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passed_deadline_leaves_nothing() {
        assert_eq!(remaining(Instant::now()), None);
        let left = remaining(Instant::now() + Duration::from_secs(5)).unwrap();
        assert!(left > Duration::from_secs(4) && left <= Duration::from_secs(5));
    }

    #[test]
    fn timeouts_are_both_kinds() {
        assert!(is_timeout(&io::ErrorKind::WouldBlock.into()));
        assert!(is_timeout(&io::ErrorKind::TimedOut.into()));
        assert!(!is_timeout(&io::ErrorKind::ConnectionReset.into()));
    }
}
