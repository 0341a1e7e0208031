//! Shared libraries compiled with `cc` during the tests: the C driver
//! `tests/c_driver/echo_driver.c` (as `libconsolegate_cecho.so`, optionally claiming another
//! ABI version), and a library that does not export `consolegate_driver_v1` at all. Each goes
//! into its own scratch directory, which the test uses as `driver_dir`.

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

/// `libconsolegate_cecho.so` from `echo_driver.c`; with `abi_version`, its descriptor claims
/// that ABI version (`-DCG_TEST_ABI_VERSION=N`).
pub fn echo_driver(abi_version: Option<u32>) -> Library {
    let source = workspace_root().join("tests/c_driver/echo_driver.c");
    let defines: Vec<String> = abi_version
        .map(|v| format!("-DCG_TEST_ABI_VERSION={v}"))
        .into_iter()
        .collect();
    compile("cecho", &source, &defines)
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
