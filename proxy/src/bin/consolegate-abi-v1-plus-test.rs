//! Test only: the `consolegate` daemon built with the feature `abi-v1-plus-test`, whose ABI
//! structs carry one field more than v1, so that `tests/tests/abi_growth.rs` can run v1
//! drivers in a host whose structs have grown. Built only when the feature is on.

#[path = "../main.rs"]
mod daemon_main;

fn main() -> std::process::ExitCode {
    daemon_main::main()
}
