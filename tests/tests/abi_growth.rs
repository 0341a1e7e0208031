//! The growth rule of `docs/ABI.md` holds: drivers built for v1 load and run a whole session
//! in a host whose structs have grown. The grown host is the daemon built with the feature
//! `abi-v1-plus-test` (binary `consolegate-abi-v1-plus-test`), in which every struct with a
//! `struct_size` carries one field more than v1. The test builds it with cargo, into the
//! same target directory (only driver-api and the proxy crate are compiled again), so it
//! always runs the current sources.
//!
//! Both directions are exercised: the host reads each v1 driver's descriptor and channel
//! vtable, which lack the new field (the host must read it as absent, and says so in its
//! log); the C driver (`echo_driver.c`, built with the v1 header) and the Rust `noop` driver
//! (built against v1 driver-api) read the host's larger `cg_host`, `cg_session_info` and
//! `cg_client_io`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use consolegate_tests::c_driver::{self, Echo};
use consolegate_tests::proxy::{profile_dir, workspace_root};
use consolegate_tests::rfb;
use consolegate_tests::setup::{assert_qemu_console, VncSetup};
use consolegate_tests::ws;

/// The daemon whose ABI structs carry one field more than v1, built once per test run.
fn grown_host() -> &'static Path {
    static HOST: OnceLock<PathBuf> = OnceLock::new();
    HOST.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let profile = profile_dir();
        let mut command = Command::new(&cargo);
        // Cargo gives this test the variables it sets for the crate under test; a build
        // script that watches one (ring's watches CARGO_MANIFEST_DIR) would otherwise see a
        // change, and the nested build and the next ordinary one would each rebuild half the
        // dependency tree.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if set_by_cargo_for_the_test(&name) {
                command.env_remove(&*name);
            }
        }
        command.current_dir(workspace_root()).args([
            "build",
            "-q",
            "-p",
            "consolegate",
            "--features",
            "abi-v1-plus-test",
            "--bin",
            "consolegate-abi-v1-plus-test",
        ]);
        if profile.file_name().is_some_and(|n| n == "release") {
            command.arg("--release");
        }
        let started = Instant::now();
        let out = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", cargo.to_string_lossy()));
        assert!(
            out.status.success(),
            "cargo could not build the grown host ({command:?}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("grown host built in {:?}", started.elapsed());
        let path = profile.join("consolegate-abi-v1-plus-test");
        assert!(path.is_file(), "cargo built no {}", path.display());
        path
    })
}

/// Whether cargo sets `name` for the crate it builds or tests (not for cargo itself): see
/// "Environment variables Cargo sets for crates" in the Cargo book.
fn set_by_cargo_for_the_test(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_BIN_")
        || [
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_CRATE_NAME",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
            "OUT_DIR",
        ]
        .contains(&name)
}

/// Runs one VNC session through `setup` and checks QEMU's console and a framebuffer update.
fn assert_session_runs(setup: &VncSetup) {
    let mut ws = ws::open(&setup.url());
    let init = assert_qemu_console(&mut ws);
    rfb::request_update(&mut ws, init.width, init.height).unwrap();
    assert!(rfb::read_update_header(&mut ws).unwrap() >= 1);
    ws.close();
}

/// Waits for `line` in the proxy's log; panics with the log if it never comes.
fn assert_logged(setup: &VncSetup, line: &str) {
    assert!(
        setup
            .proxy
            .wait_for_log(line, Duration::from_secs(10))
            .is_some(),
        "no {line:?} in the log:\n{}",
        setup.proxy.log()
    );
}

#[test]
fn a_v1_c_driver_runs_a_session_in_a_host_whose_structs_have_grown() {
    let lib = c_driver::echo_driver_variant(Echo::V1);
    let host = grown_host();
    let setup = VncSetup::start_with(|c| c.daemon_binary(host).driver_in(lib.dir(), "cecho"));
    assert_logged(
        &setup,
        "abi-v1-plus-test: driver 'cecho': cg_driver_descriptor.test_extension is absent",
    );
    assert_session_runs(&setup);
    assert_logged(
        &setup,
        "abi-v1-plus-test: cg_channel_vtable.test_extension is absent",
    );
    // The driver read the grown cg_host: its log line came through the host's callback.
    assert_logged(&setup, "[cecho] cecho driver: relaying in cleartext");
}

#[test]
fn a_v1_rust_driver_runs_a_session_in_a_host_whose_structs_have_grown() {
    let host = grown_host();
    let setup = VncSetup::start_with(|c| c.daemon_binary(host));
    assert_logged(
        &setup,
        "abi-v1-plus-test: driver 'noop': cg_driver_descriptor.test_extension is absent",
    );
    assert_session_runs(&setup);
    assert_logged(
        &setup,
        "abi-v1-plus-test: cg_channel_vtable.test_extension is absent",
    );
}
