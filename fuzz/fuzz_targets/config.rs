//! /etc/herarx/herarx.toml: TOML parsing with the explaining walk, and validation.
//!
//! Beyond "does not crash": the explaining parser (what herarxd and `herarxctl config check`
//! use) accepts exactly what serde's own parse of the schema accepts; checking the text is
//! parsing then validating; validation is deterministic; and a configuration the validator
//! accepts never reaches a value its accessors cannot read (the daemon relies on that:
//! "never after validation" in their docs).
#![no_main]

use herarx_config::{Config, TotpAlgorithm, parse_date, parse_duration, parse_network};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let explained = Config::parse_explained(text);
    let serde: Result<Config, _> = toml::from_str(text);
    match (&explained, &serde) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) => panic!("the walk accepts what serde refuses: {e}"),
        (Err(p), Ok(_)) => panic!("the walk refuses what serde accepts: {p:?}"),
    }
    for problem in explained.as_ref().err().into_iter().flatten() {
        assert!(!problem.is_empty());
    }
    let Ok(config) = explained else {
        return;
    };
    let validated = config.validate();
    assert_eq!(
        validated,
        config.validate(),
        "validation is not deterministic"
    );
    assert_eq!(
        Config::check_text(text).map_err(|_| ()),
        validated.clone().map(|()| config.clone()).map_err(|_| ())
    );
    if let Err(problems) = &validated {
        assert!(!problems.is_empty() && problems.iter().all(|p| !p.is_empty()));
        return;
    }
    // Accepted: every accessor has a value to give.
    assert!(config.no_factor_policy().is_some());
    assert!(config.required().is_some());
    assert!(config.enroll_from().is_some());
    assert!(TotpAlgorithm::from_config(&config.totp.algorithm).is_some());
    assert!((6..=8).contains(&config.totp.digits) && config.totp.period > 0);
    assert!(config.key_file().is_absolute());
    assert!(config.login.allow_until.is_empty() || parse_date(&config.login.allow_until).is_some());
    assert_eq!(
        config.allow_until().is_some(),
        !config.login.allow_until.is_empty()
    );
    for value in [
        &config.login.enroll_window,
        &config.audit.retention,
        &config.remember.session,
        &config.remember.address_for,
        &config.remember.ssh_keys,
    ] {
        assert!(
            parse_duration(value).is_some(),
            "{value:?} accepted, not a duration"
        );
    }
    for entry in &config.network.trusted {
        assert!(
            parse_network(entry).is_some(),
            "{entry:?} accepted, not a network"
        );
    }
    for (name, service) in &config.services {
        let want = service
            .trusted_networks
            .as_ref()
            .unwrap_or(&config.network.trusted)
            .len();
        assert_eq!(config.trusted_networks(name).len(), want);
        let _ = config.trusted_network_of(name, "192.0.2.1");
        let _ = config.trusted_network_of(name, "[2001:db8::1]");
    }
    let _ = (
        config.enroll_window_seconds(),
        config.audit_retention_seconds(),
        config.session_trust_seconds(),
        config.address_memory_seconds(),
        config.ssh_key_memory_seconds(),
        config.fido2_uv_required(),
        config.sent_code_valid_seconds(),
        config.sent_code_resend_seconds(),
        config.email_enabled(),
        config.sms_enabled(),
    );
});
