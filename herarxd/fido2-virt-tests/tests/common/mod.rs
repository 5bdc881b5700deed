//! What the end-to-end test files share: a private bus and `hx-herarxd-virt` on it.

use std::path::PathBuf;

use herarx_tests::{Bus, Daemon, DaemonConfig};

/// A bus and the virtual-key daemon: `keys` plugged in, `[fido2]` lines, more environment
/// (see src/bin/hx-herarxd-virt.rs). Codes of the next few steps pass (skew 3), so one user
/// can step up and log in several times within a test.
pub fn start_daemon(keys: usize, fido2: &str, env: &[(&str, &str)]) -> (Daemon, Bus) {
    let bus = Bus::start();
    let mut daemon_env: Vec<(String, String)> = vec![("HX_VIRT_KEYS".into(), keys.to_string())];
    daemon_env.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let daemon = Daemon::start(
        &bus,
        DaemonConfig {
            skew: 3,
            extra_tables: Some(format!("[fido2]\nrp_id = \"pam://virt-test\"\n{fido2}\n")),
            daemon_binary: Some(PathBuf::from(env!("CARGO_BIN_EXE_hx-herarxd-virt"))),
            daemon_env,
            ..DaemonConfig::default()
        },
    );
    (daemon, bus)
}
