//! Where the built artefacts are: beside the running executable (a test binary sits in
//! `target/<profile>/deps`, the benchmark in `target/<profile>`), so tests and the benchmark
//! use the binaries of their own profile.

use std::path::{Path, PathBuf};

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

/// What the test users run or load: they must be able to reach it.
const SHARED_ARTEFACTS: [&str; 5] = [
    "herarxd",
    "herarxctl",
    "hx-pam",
    "hx-flood",
    "libpam_herarx.so",
];

/// A built artefact, or a panic telling how to build it (tests only).
pub fn artefact(name: &str) -> PathBuf {
    let p = artefact_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: build the workspace first (`cargo build --workspace`)",
        p.display()
    );
    p
}

/// Where the artefacts are run from: the build directory itself when every user can reach it,
/// else (a checkout under a 0700 directory) a private copy that other users can reach, removed
/// when the process exits.
fn artefact_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let built = bin_dir();
        if reachable_by_everyone(&built) {
            return built;
        }
        let copy = std::env::temp_dir().join(format!("herarx-tests-{}", std::process::id()));
        std::fs::create_dir_all(&copy).expect("artefact copy dir");
        for name in SHARED_ARTEFACTS {
            let from = built.join(name);
            if from.exists() {
                std::fs::copy(&from, copy.join(name)).expect("copy artefact");
            }
        }
        set_mode(&copy, 0o755);
        COPY_DIR.get_or_init(|| copy.clone());
        // SAFETY: registers a plain extern "C" function; it only removes our own directory.
        unsafe { libc::atexit(remove_copy) };
        copy
    })
    .clone()
}

static COPY_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

extern "C" fn remove_copy() {
    if let Some(dir) = COPY_DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Whether every directory from / down to `dir` lets others through (o+x).
fn reachable_by_everyone(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    dir.ancestors().all(|d| {
        std::fs::metadata(d)
            .map(|m| m.permissions().mode() & 0o001 != 0)
            .unwrap_or(false)
    })
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

pub fn hx_flood() -> PathBuf {
    artefact("hx-flood")
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
