//! The typed values of a [`Config`]: durations, dates, networks, method lists and policy
//! words parsed once per configuration instead of on every login.
//!
//! Mechanism: a `#[serde(skip)]` [`ParsedCache`] field of `Config`, a `OnceLock` filled on the
//! first accessor call. Why this and not computing the values in `load`/`parse`/`validate`:
//! the daemon also builds configurations as `Config::default()` and edits fields before use
//! (`--state-dir`, tests), and `validate` takes `&self`; a cache filled at construction would
//! miss those edits, one filled on first use sees them. The daemon puts every configuration in
//! an `Arc` before the first login reads it and never mutates it afterwards (SIGHUP builds a
//! whole new one), so one parse per configuration version is enough.
//!
//! What keeps the cache honest:
//! - [`Config::validate`] parses the raw strings itself and never fills the cache, so editing
//!   a loaded (validated) configuration before its first use is still seen.
//! - A clone starts with an empty cache: `let mut c = old.clone(); c.x = ...` is seen.
//! - The cache takes no part in equality: two configurations with the same TOML values are
//!   equal whether or not either was used.
//!
//! What it does not cover: editing a field of a configuration *after* one of its accessors ran
//! is not seen by the accessors (the fields are public). Nothing in herarxd does that; edit
//! before first use, or clone and edit the clone.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use ipnet::IpNet;

use crate::{
    Config, EnrollFrom, METHODS, NoFactorPolicy, Required, TotpAlgorithm, parse_date,
    parse_duration, parse_network,
};

/// The lazily filled [`Parsed`] values of one configuration. Clones empty, compares equal to
/// any other (see the module comment).
#[derive(Default)]
pub(crate) struct ParsedCache(OnceLock<Parsed>);

impl ParsedCache {
    pub(crate) fn get(&self, config: &Config) -> &Parsed {
        self.0.get_or_init(|| Parsed::of(config))
    }

    #[cfg(test)]
    pub(crate) fn is_filled(&self) -> bool {
        self.0.get().is_some()
    }
}

impl Clone for ParsedCache {
    /// Empty: the clone may be edited before its first use, and must then parse its own values.
    fn clone(&self) -> Self {
        ParsedCache::default()
    }
}

impl PartialEq for ParsedCache {
    /// Derived from the TOML fields, so it never makes two configurations differ.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ParsedCache {}

impl fmt::Debug for ParsedCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Derived from the other fields: printing it again would only double the output.
        f.write_str("(parsed on first use)")
    }
}

/// The values the accessors of [`Config`] return. Invalid strings give the same fallbacks the
/// accessors always had (never after [`Config::validate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub session_trust_seconds: u64,
    pub audit_retention_seconds: u64,
    pub address_memory_seconds: Option<u64>,
    pub ssh_key_memory_seconds: u64,
    pub enroll_window_seconds: u64,
    pub allow_until: Option<u64>,
    pub no_factor: Option<NoFactorPolicy>,
    pub required: Option<Required>,
    pub enroll_from: Option<EnrollFrom>,
    pub totp_algorithm: TotpAlgorithm,
    pub fido2_uv_required: bool,
    pub sent_code_valid_seconds: u64,
    pub sent_code_resend_seconds: u64,
    /// `network.trusted`, for services without their own list.
    pub trusted: Vec<IpNet>,
    /// Every service named in `[services.*]` or `remember.ssh_services`, and `sshd`; any
    /// other service gets [`OTHER`].
    pub services: BTreeMap<String, ServicePolicy>,
}

/// One PAM service's settings, resolved against the global ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServicePolicy {
    /// Its own `trusted_networks`; `None`: `network.trusted`.
    pub trusted: Option<Vec<IpNet>>,
    /// The [`METHODS`] it accepts, bit `i` for `METHODS[i]`; `None`: all.
    pub methods: Option<u8>,
    pub always_remote: bool,
    pub believes_ssh_auth_info: bool,
}

/// The policy of a service the configuration does not name.
static OTHER: ServicePolicy = ServicePolicy {
    trusted: None,
    methods: None,
    always_remote: false,
    believes_ssh_auth_info: false,
};

/// The bit of `method` in [`ServicePolicy::methods`]; `None` for a name not in [`METHODS`].
pub(crate) fn method_bit(method: &str) -> Option<u8> {
    METHODS.iter().position(|m| *m == method).map(|i| 1 << i)
}

fn networks(list: &[String]) -> Vec<IpNet> {
    list.iter().filter_map(|e| parse_network(e)).collect()
}

impl Parsed {
    pub(crate) fn of(c: &Config) -> Parsed {
        let r = &c.remember;
        let mut services = BTreeMap::new();
        let named = c
            .services
            .keys()
            .chain(&r.ssh_services)
            .map(String::as_str)
            .chain(["sshd"]);
        for name in named {
            let own = c.services.get(name);
            let believes = r.ssh_services.iter().any(|s| s == name);
            let policy = ServicePolicy {
                trusted: own
                    .and_then(|s| s.trusted_networks.as_deref())
                    .map(networks),
                methods: own.and_then(|s| s.methods.as_ref()).map(|list| {
                    list.iter()
                        .filter_map(|m| method_bit(m))
                        .fold(0, |bits, b| bits | b)
                }),
                always_remote: own
                    .and_then(|s| s.always_remote)
                    .unwrap_or(name == "sshd" || believes),
                believes_ssh_auth_info: believes,
            };
            services.insert(name.to_owned(), policy);
        }
        Parsed {
            session_trust_seconds: parse_duration(&r.session).unwrap_or(0),
            audit_retention_seconds: parse_duration(&c.audit.retention).unwrap_or(0),
            address_memory_seconds: (r.addresses == "opt-in")
                .then(|| parse_duration(&r.address_for).unwrap_or(0))
                .filter(|s| *s > 0),
            ssh_key_memory_seconds: parse_duration(&r.ssh_keys).unwrap_or(0),
            enroll_window_seconds: parse_duration(&c.login.enroll_window).unwrap_or(0),
            allow_until: parse_date(&c.login.allow_until),
            no_factor: NoFactorPolicy::from_config(&c.login.no_factor),
            required: Required::from_config(&c.login.required),
            enroll_from: EnrollFrom::from_config(&c.login.enroll_from),
            totp_algorithm: TotpAlgorithm::from_config(&c.totp.algorithm)
                .unwrap_or(TotpAlgorithm::Sha1),
            fido2_uv_required: c.fido2.user_verification == "required",
            sent_code_valid_seconds: parse_duration(&c.sent_codes.valid_for).unwrap_or(300),
            sent_code_resend_seconds: parse_duration(&c.sent_codes.resend_after).unwrap_or(30),
            trusted: networks(&c.network.trusted),
            services,
        }
    }

    /// The policy of `service`.
    pub(crate) fn service(&self, service: &str) -> &ServicePolicy {
        self.services.get(service).unwrap_or(&OTHER)
    }

    /// The trusted networks of `service`.
    pub(crate) fn trusted_of(&self, service: &str) -> &[IpNet] {
        self.service(service)
            .trusted
            .as_deref()
            .unwrap_or(&self.trusted)
    }
}

#[cfg(test)]
#[path = "parsed_tests.rs"]
mod tests;
