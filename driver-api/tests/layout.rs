//! The Rust types and the C header describe the same ABI: sizes and field offsets are checked
//! against values a C compiler computes from `include/consolegate_driver.h`, and the header's
//! constants against the crate's.

use std::mem::{offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

use consolegate_driver_api::abi::*;

fn header() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("include/consolegate_driver.h")
}

/// Compiles and runs a C program that prints `name value` lines for the header's layout.
fn c_layout() -> Vec<(String, u64)> {
    let dir = std::env::temp_dir().join(format!("cg-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("layout.c");
    let exe = dir.join("layout");
    let mut program = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include \"consolegate_driver.h\"\n\
         #define S(t) printf(#t \" %zu\\n\", sizeof(t));\n\
         #define O(t, f) printf(#t \".\" #f \" %zu\\n\", offsetof(t, f));\n\
         #define C(c) printf(#c \" %llu\\n\", (unsigned long long)(c));\nint main(void) {\n",
    );
    for line in [
        "S(cg_str) S(cg_error) S(cg_option) S(cg_host) S(cg_session_info) S(cg_client_io)",
        "S(cg_channel_vtable) S(cg_channel) S(cg_driver_descriptor)",
        "O(cg_host, log) O(cg_session_info, host) O(cg_session_info, port)",
        "O(cg_session_info, handshake_timeout_ms) O(cg_session_info, username)",
        "O(cg_session_info, password) O(cg_session_info, session_id)",
        "O(cg_client_io, read) O(cg_client_io, write) O(cg_channel_vtable, destroy)",
        "O(cg_driver_descriptor, name) O(cg_driver_descriptor, option_sections)",
        "O(cg_driver_descriptor, init) O(cg_driver_descriptor, destroy)",
        "C(CG_DRIVER_MAGIC) C(CG_ABI_VERSION) C(CG_KIND_VNC) C(CG_KIND_SPICE) C(CG_KIND_SERIAL)",
        "C(CG_DRIVER_FLAG_CLEARTEXT) C(CG_DRIVER_FLAG_PLACEHOLDER) C(CG_INTEREST_WRITE)",
        "C(CG_WOULD_BLOCK) C(CG_CONFIG) C(CG_TLS) C(CG_CLIENT) C(CG_PANIC) C(CG_INTERNAL)",
    ] {
        program.push_str(line);
        program.push('\n');
    }
    program.push_str("return 0; }\n");
    std::fs::write(&src, program).unwrap();
    let include = header().parent().unwrap().to_path_buf();
    let status = Command::new("cc")
        .arg("-std=c11")
        .arg("-Wall")
        .arg("-Werror")
        .arg("-I")
        .arg(&include)
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("a C compiler (cc) is needed for the ABI layout test");
    assert!(status.success(), "the header does not compile");
    let out = Command::new(&exe).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

#[test]
fn rust_and_c_agree_on_every_size_offset_and_constant() {
    let expected: Vec<(&str, u64)> = vec![
        ("cg_str", size_of::<CgStr>() as u64),
        ("cg_error", size_of::<CgError>() as u64),
        ("cg_option", size_of::<CgOption>() as u64),
        ("cg_host", size_of::<CgHost>() as u64),
        ("cg_session_info", size_of::<CgSessionInfo>() as u64),
        ("cg_client_io", size_of::<CgClientIo>() as u64),
        ("cg_channel_vtable", size_of::<CgChannelVtable>() as u64),
        ("cg_channel", size_of::<CgChannel>() as u64),
        (
            "cg_driver_descriptor",
            size_of::<CgDriverDescriptor>() as u64,
        ),
        ("cg_host.log", offset_of!(CgHost, log) as u64),
        (
            "cg_session_info.host",
            offset_of!(CgSessionInfo, host) as u64,
        ),
        (
            "cg_session_info.port",
            offset_of!(CgSessionInfo, port) as u64,
        ),
        (
            "cg_session_info.handshake_timeout_ms",
            offset_of!(CgSessionInfo, handshake_timeout_ms) as u64,
        ),
        (
            "cg_session_info.username",
            offset_of!(CgSessionInfo, username) as u64,
        ),
        (
            "cg_session_info.password",
            offset_of!(CgSessionInfo, password) as u64,
        ),
        (
            "cg_session_info.session_id",
            offset_of!(CgSessionInfo, session_id) as u64,
        ),
        ("cg_client_io.read", offset_of!(CgClientIo, read) as u64),
        ("cg_client_io.write", offset_of!(CgClientIo, write) as u64),
        (
            "cg_channel_vtable.destroy",
            offset_of!(CgChannelVtable, destroy) as u64,
        ),
        (
            "cg_driver_descriptor.name",
            offset_of!(CgDriverDescriptor, name) as u64,
        ),
        (
            "cg_driver_descriptor.option_sections",
            offset_of!(CgDriverDescriptor, option_sections) as u64,
        ),
        (
            "cg_driver_descriptor.init",
            offset_of!(CgDriverDescriptor, init) as u64,
        ),
        (
            "cg_driver_descriptor.destroy",
            offset_of!(CgDriverDescriptor, destroy) as u64,
        ),
        ("CG_DRIVER_MAGIC", CG_DRIVER_MAGIC as u64),
        ("CG_ABI_VERSION", CG_ABI_VERSION as u64),
        ("CG_KIND_VNC", CG_KIND_VNC as u64),
        ("CG_KIND_SPICE", CG_KIND_SPICE as u64),
        ("CG_KIND_SERIAL", CG_KIND_SERIAL as u64),
        ("CG_DRIVER_FLAG_CLEARTEXT", CG_DRIVER_FLAG_CLEARTEXT as u64),
        (
            "CG_DRIVER_FLAG_PLACEHOLDER",
            CG_DRIVER_FLAG_PLACEHOLDER as u64,
        ),
        ("CG_INTEREST_WRITE", CG_INTEREST_WRITE as u64),
        ("CG_WOULD_BLOCK", CgStatus::WOULD_BLOCK.0 as u64),
        ("CG_CONFIG", CgStatus::CONFIG.0 as u64),
        ("CG_TLS", CgStatus::TLS.0 as u64),
        ("CG_CLIENT", CgStatus::CLIENT.0 as u64),
        ("CG_PANIC", CgStatus::PANIC.0 as u64),
        ("CG_INTERNAL", CgStatus::INTERNAL.0 as u64),
    ];
    let c = c_layout();
    assert_eq!(c.len(), expected.len(), "C printed {c:?}");
    for ((c_name, c_value), (name, value)) in c.iter().zip(&expected) {
        assert_eq!(
            (c_name.as_str(), *c_value),
            (*name, *value),
            "C and Rust disagree on {name}"
        );
    }
}

#[test]
fn header_names_the_symbol_the_crate_exports() {
    let text = std::fs::read_to_string(header()).unwrap();
    assert!(text.contains(&format!("#define CG_DRIVER_SYMBOL \"{CG_DRIVER_SYMBOL}\"")));
    assert!(text.contains(&format!(
        "const cg_driver_descriptor *{CG_DRIVER_SYMBOL}(void);"
    )));
}
