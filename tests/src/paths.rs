//! Where the built artefacts are: beside the running executable (a test binary sits in
//! `target/<profile>/deps`, the benchmark in `target/<profile>`), so tests and the benchmark
//! use the binaries of their own profile.

use std::path::PathBuf;

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().map(PathBuf::from).unwrap_or(dir)
    } else {
        dir
    }
}

/// A built artefact, or a panic telling how to build it (tests only).
pub fn artefact(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: build the workspace first (`cargo build --workspace`)",
        p.display()
    );
    p
}

pub fn herarxd() -> PathBuf {
    artefact("herarxd")
}

pub fn herarxctl() -> PathBuf {
    artefact("herarxctl")
}

pub fn hx_pam() -> PathBuf {
    artefact("hx-pam")
}

pub fn pam_module() -> PathBuf {
    artefact("libpam_herarx.so")
}

pub fn dbus_policy_dir() -> PathBuf {
    workspace_root().join("packaging/dbus")
}

pub fn shipped_config() -> PathBuf {
    workspace_root().join("packaging/herarx.toml")
}
