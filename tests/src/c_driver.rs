//! Shared libraries compiled with `cc` during the tests: the C driver
//! `tests/c_driver/echo_driver.c` (as `libconsolegate_cecho.so`, correct or in one of the
//! [`Echo`] variants that break one promise of the ABI), and a library that does not export
//! `consolegate_driver_v1` at all. Each goes into its own scratch directory, which the test
//! uses as `driver_dir`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::proxy::workspace_root;
use crate::scratch::TempDir;

/// A directory holding one compiled library; removed when dropped.
#[derive(Debug)]
pub struct Library {
    dir: TempDir,
    name: String,
}

impl Library {
    /// The directory, for `driver_dir`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `dir/libconsolegate_<name>.so`.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&format!("libconsolegate_{}.so", self.name))
    }
}

/// A build of `echo_driver.c` (see the `CG_TEST_*` macros at its top).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// A correct v1 driver, built with the v1 header.
    V1,
    /// The descriptor claims this ABI version.
    AbiVersion(u32),
    /// The descriptor's `struct_size` is this many bytes.
    DescriptorSize(u32),
    /// The descriptor's `connect` is NULL.
    NullConnect,
    /// The channel vtable's `read` is NULL.
    NullVtableRead,
    /// A newer driver: its descriptor and channel vtable carry one field more than v1, with
    /// `struct_size` to match.
    Grown,
}

impl Echo {
    fn defines(self) -> Vec<String> {
        match self {
            Echo::V1 => vec![],
            Echo::AbiVersion(v) => vec![format!("-DCG_TEST_ABI_VERSION={v}")],
            Echo::DescriptorSize(n) => vec![format!("-DCG_TEST_DESCRIPTOR_SIZE={n}")],
            Echo::NullConnect => vec!["-DCG_TEST_NULL_CONNECT".into()],
            Echo::NullVtableRead => vec!["-DCG_TEST_NULL_VTABLE_READ".into()],
            Echo::Grown => vec!["-DCG_TEST_GROWN".into()],
        }
    }
}

/// `libconsolegate_cecho.so` from `echo_driver.c`; with `abi_version`, its descriptor claims
/// that ABI version (`-DCG_TEST_ABI_VERSION=N`).
pub fn echo_driver(abi_version: Option<u32>) -> Library {
    echo_driver_variant(abi_version.map_or(Echo::V1, Echo::AbiVersion))
}

/// `libconsolegate_cecho.so` from `echo_driver.c`, built as `variant`.
pub fn echo_driver_variant(variant: Echo) -> Library {
    let source = workspace_root().join("tests/c_driver/echo_driver.c");
    compile("cecho", &source, &variant.defines())
}

/// `libconsolegate_<name>.so` that exports a function, but not `consolegate_driver_v1`.
pub fn library_without_driver_symbol(name: &str) -> Library {
    let src = TempDir::new("c-src");
    let source = src.write(
        "empty.c",
        "int consolegate_not_a_driver(void) { return 42; }\n",
    );
    compile(name, &source, &[])
}

fn compile(name: &str, source: &Path, defines: &[String]) -> Library {
    let library = Library {
        dir: TempDir::new("c-driver"),
        name: name.into(),
    };
    let include = workspace_root().join("driver-api/include");
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(&include)
        .args(defines)
        .arg("-o")
        .arg(library.path())
        .arg(source)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run cc ({e}): install a C compiler (apt-get install gcc)")
        });
    assert!(
        out.status.success(),
        "cc failed on {}:\n{}",
        source.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    library
}
