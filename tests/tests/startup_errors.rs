//! Configurations the proxy refuses at start-up, each with a message that says what is wrong:
//! drivers that cannot be loaded or initialised, cleartext without consent, no certificate.
//! Every case is checked both by starting the daemon and with `--check-config`.

use consolegate_tests::c_driver;
use consolegate_tests::proxy::{check_config, Config, Proxy};

/// Starts the proxy with `config` (and checks it with `--check-config`): both must exit
/// non-zero with every one of `expected` in their output.
fn assert_refused(make: impl Fn() -> Config, expected: &[&str]) {
    let (code, log) = Proxy::start_failure(make());
    assert_ne!(code, 0, "the daemon exited with 0:\n{log}");
    let (check_code, check_out) = check_config(&make());
    assert_ne!(check_code, 0, "--check-config exited with 0:\n{check_out}");
    for text in expected {
        assert!(log.contains(text), "daemon stderr lacks {text:?}:\n{log}");
        assert!(
            check_out.contains(text),
            "--check-config output lacks {text:?}:\n{check_out}"
        );
    }
    assert!(!check_out.contains("configuration OK"), "{check_out}");
}

#[test]
fn missing_driver_file_is_refused_naming_the_path() {
    let dir = consolegate_tests::scratch::TempDir::new("empty-driver-dir");
    let path = dir.join("libconsolegate_nosuch.so").display().to_string();
    assert_refused(
        || Config::new().driver_in(dir.path(), "nosuch"),
        &["driver 'nosuch': cannot load", &path],
    );
}

#[test]
fn library_without_the_driver_symbol_is_refused() {
    let lib = c_driver::library_without_driver_symbol("nosym");
    assert_refused(
        || Config::new().driver_in(lib.dir(), "nosym"),
        &["driver 'nosym'", "does not export consolegate_driver_v1"],
    );
}

#[test]
fn driver_with_wrong_abi_version_is_refused() {
    let lib = c_driver::echo_driver(Some(99));
    assert_refused(
        || Config::new().driver_in(lib.dir(), "cecho"),
        &[
            "driver 'cecho': ",
            "ABI version 99, but this consolegate supports ABI version 1",
        ],
    );
}

#[test]
fn driver_panicking_in_init_is_refused() {
    assert_refused(
        || Config::new().fault_driver("panic_in_init"),
        &[
            "driver 'fault': init failed: ",
            "fault driver told to panic in init",
        ],
    );
}

#[test]
fn driver_failing_init_is_refused_with_its_message() {
    assert_refused(
        || Config::new().fault_driver("fail_init"),
        &["driver 'fault': init failed: fault driver told to fail init"],
    );
}

#[test]
fn noop_without_connect_insecure_is_refused() {
    assert_refused(
        || Config::new().unset("connect_insecure"),
        &["driver 'noop' leaves the hypervisor leg in cleartext; set connect_insecure = true to allow it"],
    );
}

#[test]
fn noop_with_connect_insecure_false_is_refused() {
    assert_refused(
        || Config::new().set("connect_insecure", "false"),
        &["driver 'noop' leaves the hypervisor leg in cleartext"],
    );
}

#[test]
fn no_certificate_without_listen_insecure_is_refused() {
    assert_refused(
        || Config::new().unset("listen_insecure"),
        &["no ssl_certificate and ssl_key: set them to serve wss, or set listen_insecure = true to serve plain ws"],
    );
}

#[test]
fn driver_with_a_null_connect_is_refused_naming_the_field() {
    let lib = c_driver::echo_driver_variant(c_driver::Echo::NullConnect);
    assert_refused(
        || Config::new().driver_in(lib.dir(), "cecho"),
        &["driver 'cecho': descriptor field 'connect' is NULL"],
    );
}

#[test]
fn driver_with_a_descriptor_below_the_v1_size_is_refused() {
    let lib = c_driver::echo_driver_variant(c_driver::Echo::DescriptorSize(40));
    assert_refused(
        || Config::new().driver_in(lib.dir(), "cecho"),
        &[
            "driver 'cecho': ",
            "has a malformed descriptor: cg_driver_descriptor.struct_size is 40, below the v1 size of ",
        ],
    );
}
