//! The ABI is language-neutral: a driver written in C against `consolegate_driver.h` carries
//! a whole session to QEMU; a newer driver whose structs have grown runs in this host; a
//! driver that returns a channel with a NULL function costs that session, not the proxy.

use consolegate_tests::c_driver::{self, Echo};
use consolegate_tests::proxy::check_config;
use consolegate_tests::rfb;
use consolegate_tests::setup::{assert_qemu_console, VncSetup};
use consolegate_tests::ws;

#[test]
fn c_driver_session_works_end_to_end() {
    let lib = c_driver::echo_driver(None);
    let setup = VncSetup::start_with(|c| c.driver_in(lib.dir(), "cecho"));
    let mut ws = ws::open(&setup.url());
    let init = assert_qemu_console(&mut ws);
    rfb::request_update(&mut ws, init.width, init.height).unwrap();
    assert!(rfb::read_update_header(&mut ws).unwrap() >= 1);
    ws.close();
    let log = setup
        .proxy
        .wait_for_log("driver=cecho ", std::time::Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no audit line naming the C driver:\n{}", setup.proxy.log()));
    assert!(
        log.contains("cecho driver: relaying in cleartext"),
        "the driver's log line: {log}"
    );
}

#[test]
fn check_config_lists_the_c_driver() {
    let lib = c_driver::echo_driver(None);
    let config = consolegate_tests::proxy::Config::new().driver_in(lib.dir(), "cecho");
    let (code, out) = check_config(&config);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("cecho") && out.contains("configuration OK"),
        "{out}"
    );
}

#[test]
fn a_newer_driver_with_grown_structs_runs_a_session() {
    let lib = c_driver::echo_driver_variant(Echo::Grown);
    let setup = VncSetup::start_with(|c| c.driver_in(lib.dir(), "cecho"));
    let mut ws = ws::open(&setup.url());
    let init = assert_qemu_console(&mut ws);
    rfb::request_update(&mut ws, init.width, init.height).unwrap();
    assert!(rfb::read_update_header(&mut ws).unwrap() >= 1);
}

#[test]
fn a_null_vtable_read_fails_each_session_with_1011_and_the_proxy_keeps_serving() {
    let lib = c_driver::echo_driver_variant(Echo::NullVtableRead);
    let setup = VncSetup::start_with(|c| c.driver_in(lib.dir(), "cecho"));
    for _ in 0..2 {
        setup
            .assert_driver_fails_session("cecho", "channel vtable field 'read' is NULL (internal)");
    }
    // The proxy process is still there and still answers.
    let refusal = ws::refusal(&setup.proxy.url("unknown"));
    assert_eq!(refusal.status, 404);
}
