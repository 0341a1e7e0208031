//! `max_connections` bounds the open sessions; one more gets 503 until one closes.

use std::time::Duration;

use consolegate_tests::setup::{assert_qemu_console, VncSetup};
use consolegate_tests::wait;
use consolegate_tests::ws::{self, Client, Failure, Refusal};

#[test]
fn third_connection_over_max_connections_2_gets_503() {
    let setup = VncSetup::start_with(|c| c.set("max_connections", "2"));
    let mut first = ws::open(&setup.url());
    assert_qemu_console(&mut first);
    let mut second = ws::open(&setup.url());
    assert_qemu_console(&mut second);
    let refusal = ws::refusal(&setup.url());
    assert_eq!(
        refusal,
        Refusal {
            status: 503,
            body: "consolegate: too many connections\n".into()
        }
    );

    first.close();
    let admitted = wait::until(Duration::from_secs(5), || {
        match Client::default().connect(&setup.url()) {
            Ok(ws) => Some(ws),
            Err(Failure::Refused(r)) if r.status == 503 => None,
            Err(e) => panic!("unexpected failure: {e:?}"),
        }
    });
    let mut third = admitted.expect("a slot is free again after a session closed");
    assert_qemu_console(&mut third);
}
