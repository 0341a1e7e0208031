//! Bounded waiting: every wait in the tests has a deadline, so a broken proxy fails a test
//! instead of hanging the suite.

use std::thread;
use std::time::{Duration, Instant};

/// How often [`until`] polls.
const POLL: Duration = Duration::from_millis(20);

/// Polls `check` until it returns `Some`, or `None` once `timeout` has passed.
pub fn until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(POLL);
    }
}

/// Polls `check` until it is true; false once `timeout` has passed.
pub fn until_true(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    until(timeout, || check().then_some(())).is_some()
}
