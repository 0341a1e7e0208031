//! After a session ends its thread has exited and both of its sockets are closed: the proxy's
//! threads and file descriptors return to their baseline after 100 sessions.

use std::time::Duration;

use consolegate_tests::fds;
use consolegate_tests::setup::{assert_qemu_console, VncSetup};
use consolegate_tests::ws;

#[test]
fn threads_and_fds_return_to_baseline_after_100_sessions() {
    let setup = VncSetup::start();
    let pid = setup.proxy.pid();
    let baseline = setup.baseline_after_one_session();

    let mut peak = baseline;
    for i in 0..100 {
        let mut ws = ws::open(&setup.url());
        assert_qemu_console(&mut ws);
        if i % 10 == 0 {
            let now = fds::usage(pid);
            peak = fds::Usage {
                threads: peak.threads.max(now.threads),
                fds: peak.fds.max(now.fds),
            };
        }
        ws.close();
    }
    assert!(
        peak.threads > baseline.threads,
        "no session thread seen: {peak:?} vs {baseline:?}"
    );
    let after = fds::back_to(pid, baseline, Duration::from_secs(5));
    assert_eq!(after, Ok(()), "baseline {baseline:?}, peak {peak:?}");
}

#[test]
fn refused_requests_leave_nothing_behind() {
    let setup = VncSetup::start();
    let pid = setup.proxy.pid();
    assert_eq!(ws::refusal(&setup.proxy.url("warm-up")).status, 404);
    let baseline = fds::settled(pid);
    for i in 0..50 {
        assert_eq!(
            ws::refusal(&setup.proxy.url(&format!("unknown-{i}"))).status,
            404
        );
    }
    let after = fds::back_to(pid, baseline, Duration::from_secs(5));
    assert_eq!(after, Ok(()), "baseline {baseline:?}");
}
