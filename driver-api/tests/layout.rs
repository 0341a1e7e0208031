//! The Rust types and the C header describe the same ABI: every struct's size, and every
//! field's offset and size, are checked against what a C compiler computes from
//! `include/consolegate_driver.h`; every `#define CG_*` of the header against the crate's
//! constant of the same name (the one function-like macro, `CG_HAS_FIELD`, against the growth
//! rule of `docs/ABI.md`).
//!
//! Each field is named, so two fields swapped in one declaration (say `read` and `write` of
//! `cg_channel_vtable`, both function pointers of the same size) fail: each one's offset
//! moves to where the other's was, and the C and Rust offsets of `read` (and of `write`)
//! differ. The field lists are checked for gaps, so a field left out of a list fails too.

use std::collections::BTreeMap;
use std::mem::{align_of, offset_of, size_of, MaybeUninit};
use std::path::PathBuf;
use std::process::Command;

use consolegate_driver_api::abi::*;

fn header() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("include/consolegate_driver.h")
}

/// Size and alignment of the type a raw field pointer points at.
fn size_align<F>(_: *const F) -> (usize, usize) {
    (size_of::<F>(), align_of::<F>())
}

/// One C struct: its Rust size, and `(field, offset, size, align)` per field in declaration
/// order.
struct Layout {
    c_name: &'static str,
    size: usize,
    fields: Vec<(&'static str, usize, usize, usize)>,
}

/// `Layout`s from `cg_name = RustType { field, ... }`, the fields in declaration order.
macro_rules! layouts {
    ($($c:ident = $rust:ty { $($field:ident),* $(,)? })*) => {
        vec![$(Layout {
            c_name: stringify!($c),
            size: size_of::<$rust>(),
            fields: vec![$({
                let value = MaybeUninit::<$rust>::uninit();
                // SAFETY: only the field's address is taken (addr_of!); nothing is read.
                let (size, align) = size_align(unsafe {
                    std::ptr::addr_of!((*value.as_ptr()).$field)
                });
                (stringify!($field), offset_of!($rust, $field), size, align)
            }),*],
        }),*]
    };
}

fn structs() -> Vec<Layout> {
    layouts! {
        cg_str = CgStr { ptr, len }
        cg_error = CgError { buf, cap, len }
        cg_option = CgOption { section, key, value }
        cg_host = CgHost { struct_size, abi_version, log_ctx, log }
        cg_session_info = CgSessionInfo {
            struct_size, kind, host, port, reserved, handshake_timeout_ms, username, password,
            session_id,
        }
        cg_client_io = CgClientIo { struct_size, ctx, read, write }
        cg_channel_vtable = CgChannelVtable { struct_size, read, write, flush, interest, destroy }
        cg_channel = CgChannel { state, vtable }
        cg_driver_descriptor = CgDriverDescriptor {
            magic, abi_version, struct_size, kinds, flags, name, version, description,
            option_sections, init, connect, destroy,
        }
    }
}

/// Every `#define CG_*` of the header with the crate's value.
fn constants() -> Vec<(&'static str, u64)> {
    let status = |s: CgStatus| u64::from(s.0);
    vec![
        ("CG_DRIVER_MAGIC", CG_DRIVER_MAGIC.into()),
        ("CG_ABI_VERSION", CG_ABI_VERSION.into()),
        ("CG_KIND_VNC", CG_KIND_VNC.into()),
        ("CG_KIND_SPICE", CG_KIND_SPICE.into()),
        ("CG_KIND_SERIAL", CG_KIND_SERIAL.into()),
        ("CG_DRIVER_FLAG_CLEARTEXT", CG_DRIVER_FLAG_CLEARTEXT.into()),
        (
            "CG_DRIVER_FLAG_PLACEHOLDER",
            CG_DRIVER_FLAG_PLACEHOLDER.into(),
        ),
        ("CG_INTEREST_READ", CG_INTEREST_READ.into()),
        ("CG_INTEREST_WRITE", CG_INTEREST_WRITE.into()),
        ("CG_LOG_ERROR", CG_LOG_ERROR.into()),
        ("CG_LOG_WARN", CG_LOG_WARN.into()),
        ("CG_LOG_INFO", CG_LOG_INFO.into()),
        ("CG_LOG_DEBUG", CG_LOG_DEBUG.into()),
        ("CG_LOG_TRACE", CG_LOG_TRACE.into()),
        ("CG_OK", status(CgStatus::OK)),
        ("CG_WOULD_BLOCK", status(CgStatus::WOULD_BLOCK)),
        ("CG_INVALID_ARGUMENT", status(CgStatus::INVALID_ARGUMENT)),
        ("CG_CONFIG", status(CgStatus::CONFIG)),
        ("CG_IO", status(CgStatus::IO)),
        ("CG_TIMEOUT", status(CgStatus::TIMEOUT)),
        ("CG_PROTOCOL", status(CgStatus::PROTOCOL)),
        ("CG_TLS", status(CgStatus::TLS)),
        ("CG_AUTH", status(CgStatus::AUTH)),
        ("CG_REFUSED", status(CgStatus::REFUSED)),
        ("CG_UNSUPPORTED", status(CgStatus::UNSUPPORTED)),
        ("CG_CLIENT", status(CgStatus::CLIENT)),
        ("CG_PANIC", status(CgStatus::PANIC)),
        ("CG_INTERNAL", status(CgStatus::INTERNAL)),
        ("CG_HOST_V1_SIZE", CG_HOST_V1_SIZE.into()),
        ("CG_SESSION_INFO_V1_SIZE", CG_SESSION_INFO_V1_SIZE.into()),
        ("CG_CLIENT_IO_V1_SIZE", CG_CLIENT_IO_V1_SIZE.into()),
        (
            "CG_CHANNEL_VTABLE_V1_SIZE",
            CG_CHANNEL_VTABLE_V1_SIZE.into(),
        ),
        (
            "CG_DRIVER_DESCRIPTOR_V1_SIZE",
            CG_DRIVER_DESCRIPTOR_V1_SIZE.into(),
        ),
    ]
}

/// `CG_HAS_FIELD` on a `cg_host` whose `struct_size` is the v1 size, or one byte less:
/// (label, C expression, expected).
fn has_field_cases() -> [(&'static str, &'static str, u64); 3] {
    [
        (
            "CG_HAS_FIELD v1 log",
            "CG_HAS_FIELD(&(cg_host){.struct_size = CG_HOST_V1_SIZE}, cg_host, log)",
            1,
        ),
        (
            "CG_HAS_FIELD short log",
            "CG_HAS_FIELD(&(cg_host){.struct_size = CG_HOST_V1_SIZE - 1}, cg_host, log)",
            0,
        ),
        (
            "CG_HAS_FIELD short log_ctx",
            "CG_HAS_FIELD(&(cg_host){.struct_size = CG_HOST_V1_SIZE - 1}, cg_host, log_ctx)",
            1,
        ),
    ]
}

/// What the crate says, keyed by the line the C program prints for the same item.
fn rust_layout() -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for s in structs() {
        out.insert(format!("sizeof {}", s.c_name), s.size as u64);
        for (field, offset, size, _) in &s.fields {
            out.insert(format!("offsetof {}.{field}", s.c_name), *offset as u64);
            out.insert(format!("sizeof {}.{field}", s.c_name), *size as u64);
        }
    }
    for (name, value) in constants() {
        out.insert(name.to_string(), value);
    }
    for (label, _, expected) in has_field_cases() {
        out.insert(label.to_string(), expected);
    }
    out
}

/// Compiles and runs a C program that prints the header's value for every item of
/// [`rust_layout`].
fn c_layout() -> BTreeMap<String, u64> {
    let mut program = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include \"consolegate_driver.h\"\n\
         int main(void) {\n",
    );
    let mut print = |label: String, expr: String| {
        program.push_str(&format!(
            "printf(\"{label} %llu\\n\", (unsigned long long)({expr}));\n"
        ));
    };
    for s in structs() {
        let t = s.c_name;
        print(format!("sizeof {t}"), format!("sizeof({t})"));
        for (f, ..) in &s.fields {
            print(format!("offsetof {t}.{f}"), format!("offsetof({t}, {f})"));
            print(
                format!("sizeof {t}.{f}"),
                format!("sizeof((({t} *)0)->{f})"),
            );
        }
    }
    for (name, _) in constants() {
        print(name.to_string(), name.to_string());
    }
    for (label, expr, _) in has_field_cases() {
        print(label.to_string(), expr.to_string());
    }
    program.push_str("return 0; }\n");

    let dir = std::env::temp_dir().join(format!("cg-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("layout.c");
    let exe = dir.join("layout");
    std::fs::write(&src, program).unwrap();
    let include = header().parent().unwrap().to_path_buf();
    let status = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(&include)
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("a C compiler (cc) is needed for the ABI layout test");
    assert!(status.success(), "the header does not compile");
    let out = Command::new(&exe).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
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
    let rust = rust_layout();
    let c = c_layout();
    let differ: Vec<String> = rust
        .iter()
        .filter(|(k, v)| c.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: Rust {v}, C {:?}", c.get(k)))
        .collect();
    assert!(
        differ.is_empty(),
        "C and Rust disagree:\n{}",
        differ.join("\n")
    );
    assert_eq!(c.len(), rust.len());
}

#[test]
fn every_field_of_every_struct_is_listed() {
    for s in structs() {
        let mut end = 0usize;
        let mut max_align = 1;
        for (field, offset, size, align) in &s.fields {
            let aligned = end.div_ceil(*align) * align;
            assert_eq!(
                *offset, aligned,
                "{}.{field}: a field before it is missing from the list, or out of order",
                s.c_name
            );
            end = offset + size;
            max_align = max_align.max(*align);
        }
        assert_eq!(
            s.size,
            end.div_ceil(max_align) * max_align,
            "{}: a field after the last listed one is missing from the list",
            s.c_name
        );
    }
}

#[test]
fn every_header_constant_and_every_status_is_checked() {
    let text = std::fs::read_to_string(header()).unwrap();
    let checked: Vec<&str> = constants().iter().map(|(name, _)| *name).collect();
    for name in text
        .lines()
        .filter_map(|l| l.strip_prefix("#define CG_"))
        .map(|rest| rest.split(' ').next().unwrap_or_default())
    {
        let name = format!("CG_{name}");
        let function_like = name.contains('(');
        assert!(
            checked.contains(&name.as_str()) || name == "CG_DRIVER_SYMBOL" || function_like,
            "{name} is in the header but not in this test's constants()"
        );
    }
    for n in 0..=255 {
        let status = CgStatus(n);
        if status.name() != "unknown" {
            let c_name = format!("CG_{}", status.name().to_uppercase());
            assert!(
                checked.contains(&c_name.as_str()),
                "status {n} ({c_name}) is not checked against the header"
            );
        }
    }
}

#[test]
fn v1_sizes_are_the_v1_structs() {
    assert_eq!(CG_HOST_V1_SIZE as usize, size_of::<CgHost>());
    assert_eq!(CG_SESSION_INFO_V1_SIZE as usize, size_of::<CgSessionInfo>());
    assert_eq!(CG_CLIENT_IO_V1_SIZE as usize, size_of::<CgClientIo>());
    assert_eq!(
        CG_CHANNEL_VTABLE_V1_SIZE as usize,
        size_of::<CgChannelVtable>()
    );
    assert_eq!(
        CG_DRIVER_DESCRIPTOR_V1_SIZE as usize,
        size_of::<CgDriverDescriptor>()
    );
}

#[test]
fn header_names_the_symbol_the_crate_exports() {
    let text = std::fs::read_to_string(header()).unwrap();
    assert!(text.contains(&format!("#define CG_DRIVER_SYMBOL \"{CG_DRIVER_SYMBOL}\"")));
    assert!(text.contains(&format!(
        "const cg_driver_descriptor *{CG_DRIVER_SYMBOL}(void);"
    )));
}
