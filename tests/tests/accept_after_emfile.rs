//! When the proxy runs out of descriptors, `accept` fails (EMFILE) and the connections behind it
//! wait in the listen queue. Once descriptors free up, the proxy serves them on its own: it does
//! not wait for yet another connection to wake its accept loop.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use consolegate_tests::fds;
use consolegate_tests::http::{read_response, upgrade_request};
use consolegate_tests::proxy::{Config, Proxy};

#[test]
fn queued_connections_are_served_once_descriptors_free_up() {
    let proxy = Proxy::start(Config::new().set("handshake_timeout", "30"));
    let baseline = fds::settled(proxy.pid());
    // Room for three more descriptors: three connections that stall.
    fds::set_limit(proxy.pid(), baseline.fds as u64 + 3);
    let stalled: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut tcp = TcpStream::connect(proxy.addr()).unwrap();
            tcp.write_all(b"GET /websockify?token=x HTTP/1.1\r\n")
                .unwrap();
            tcp
        })
        .collect();
    assert!(
        fds::back_to(
            proxy.pid(),
            fds::Usage {
                threads: baseline.threads + 3,
                fds: baseline.fds + 3
            },
            Duration::from_secs(5)
        )
        .is_ok(),
        "the three connections hold the last three descriptors"
    );
    // The kernel completes this connection; the proxy cannot accept it.
    let mut queued = TcpStream::connect(proxy.addr()).unwrap();
    queued
        .write_all(upgrade_request("/websockify?token=queued-token", "").as_bytes())
        .unwrap();
    assert!(
        proxy
            .wait_for_log("accept failed: Too many open files", Duration::from_secs(5))
            .is_some(),
        "{}",
        proxy.log()
    );
    // Free the descriptors, and connect nothing new.
    let t0 = Instant::now();
    drop(stalled);
    queued
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let response = read_response(&mut queued);
    assert_eq!(
        (response.status, response.body.as_str()),
        (404, "consolegate: unknown or expired token\n"),
        "after {:?}",
        t0.elapsed()
    );
    assert!(
        proxy
            .wait_for_log("accepting again", Duration::from_secs(2))
            .is_some(),
        "{}",
        proxy.log()
    );
}
