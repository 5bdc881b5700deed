//! `/etc/herarx/herarx.toml`: the daemon's whole policy.
//!
//! Every key is optional (the defaults are the values in `packaging/herarx.toml`), unknown keys
//! are an error so a typo is reported instead of silently ignored, and [`Config::validate`] names
//! the key and the fix for every value it refuses.
//!
//! Its own crate so that `herarxctl config check` reads the same schema without the daemon.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use serde::Deserialize;

mod explain;
mod messaging;
mod parsed;

pub use explain::line_of;
pub use messaging::{
    AlertsConfig, EmailConfig, SentCodesConfig, SmsConfig, is_loopback_host, url_host,
};

/// The only configuration format version this daemon understands.
pub const CONFIG_VERSION: u32 = 1;

/// Where the daemon looks for its configuration when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/herarx/herarx.toml";

/// The whole configuration. Its typed values (durations, dates, networks, per-service
/// policy) are parsed once, on the first accessor call, and kept: edit fields before that, or
/// edit a clone (which parses afresh). See `parsed.rs` for why.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub version: u32,
    pub store: StoreConfig,
    pub totp: TotpConfig,
    pub lockout: LockoutConfig,
    pub login: LoginConfig,
    pub network: NetworkConfig,
    pub admin: AdminConfig,
    pub remember: RememberConfig,
    pub fido2: Fido2Config,
    pub audit: AuditConfig,
    pub email: EmailConfig,
    pub sms: SmsConfig,
    pub sent_codes: SentCodesConfig,
    pub alerts: AlertsConfig,
    /// Per PAM service settings, `[services.<service>]`.
    pub services: BTreeMap<String, ServiceConfig>,
    /// The typed values of the fields above, filled on first use; not a TOML key, no part of
    /// equality, empty in a clone.
    #[serde(skip)]
    parsed: parsed::ParsedCache,
}

#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub state_dir: PathBuf,
    /// Empty means `<state_dir>/store.key`.
    pub key_file: PathBuf,
}

#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TotpConfig {
    pub issuer: String,
    pub algorithm: String,
    pub digits: u32,
    pub period: u32,
    pub skew: u32,
}

#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutConfig {
    /// Failures within the window that lock one remote address (or local logins).
    pub max_failures: u32,
    /// Failures within the window from all remote addresses together that lock remote logins.
    pub remote_max_failures: u32,
    pub window_seconds: u64,
    /// The first lock's length; each further lock doubles it, up to `max_lockout_seconds`.
    pub lockout_seconds: u64,
    pub max_lockout_seconds: u64,
}

#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// What a user who must have a factor but has none gets: `enroll`, `deny` or `allow`
    /// (`ignore` is the old name of `allow`).
    pub no_factor: String,
    /// Who must have a second factor: `everyone`, or `groups` (members of `required_groups`).
    pub required: String,
    pub required_groups: Vec<String>,
    /// Members of these groups never must (they are still asked once enrolled).
    pub exempt_groups: Vec<String>,
    /// With `no_factor = "allow"`: a date (`2027-01-31`, UTC) from which `deny` applies
    /// instead. Empty: no deadline.
    pub allow_until: String,
    /// With `no_factor = "enroll"`: how long after Herarx first sees an account (or an admin
    /// resets it) enrolment inside the login is offered (`7d`, `36h`; `0`: no limit).
    pub enroll_window: String,
    /// With `no_factor = "enroll"`: from where: `local`, `trusted` (local or a trusted
    /// network) or `anywhere`.
    pub enroll_from: String,
    pub max_tries: u32,
    pub timeout_seconds: u64,
}

#[derive(Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Members of this group may run `herarxctl admin`; root always may. Empty: root only.
    pub group: String,
}

#[derive(Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Networks (CIDR, or a bare address) whose logins skip the second factor.
    pub trusted: Vec<String>,
}

#[derive(Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// Replaces `network.trusted` for this service when present (an empty list trusts nothing).
    pub trusted_networks: Option<Vec<String>>,
    /// The methods this service accepts (`totp`, `backup-code`, `fido2`, `email`, `sms`); all
    /// when absent.
    pub methods: Option<Vec<String>>,
    /// Count every login of this service as remote, whatever PAM_RHOST says (sshd behind a
    /// proxy or a tunnel that ends on this host shows 127.0.0.1): remote lockout scope, no
    /// security keys, no enrolment where only local is allowed, no session trust. When absent:
    /// true for `sshd` and the services in `remember.ssh_services` (see
    /// [`Config::always_remote`]), false for the others.
    pub always_remote: Option<bool>,
}

/// The methods a service may accept, by their names in `services.NAME.methods`.
pub const METHODS: &[&str] = &["totp", "backup-code", "fido2", "email", "sms"];

/// The audit trail in the store (syslog keeps its own copy, under the host's log rotation).
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// How long rows are kept (`365d`); `0`: forever.
    pub retention: String,
    /// The most rows kept, whatever their age: the oldest go first. Bounds the store's size
    /// however many decisions are made.
    pub max_rows: u64,
}

/// The bounds of `audit.max_rows`.
pub const AUDIT_MAX_ROWS_RANGE: std::ops::RangeInclusive<u64> = 1_000..=1_000_000_000;

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            retention: "365d".into(),
            max_rows: 1_000_000,
        }
    }
}

/// Security keys (FIDO2).
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Fido2Config {
    /// The relying party id keys are registered for, `pam://<name>`. Empty: `pam://` and this
    /// host's name at the daemon's first start, recorded in the store and never re-read, so
    /// renaming the host does not orphan the keys.
    pub rp_id: String,
    /// `discouraged`: a touch is enough; `required`: the key's PIN (or built-in biometrics)
    /// too.
    pub user_verification: String,
    /// How long a login or an enrolment waits for the touch.
    pub touch_timeout_seconds: u64,
    /// At a local login of a user who has a key, ask for the touch first (else the user's
    /// primary method first, the key in the menu).
    pub keys_first: bool,
    /// Whether a key alone is the second factor. `false`: a local login of a user who has a
    /// key and a code method needs both, the touch and then a code (remote logins, where keys
    /// are never asked, need the code alone as always).
    pub key_alone: bool,
}

impl Default for Fido2Config {
    fn default() -> Self {
        Fido2Config {
            rp_id: String::new(),
            user_verification: "discouraged".into(),
            touch_timeout_seconds: 20,
            keys_first: true,
            key_alone: true,
        }
    }
}

/// When a second factor is not asked again.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RememberConfig {
    /// Session trust: after a login passed the second factor, PAM calls from inside that same
    /// login session skip it for this long (`8h`); `0`: off.
    pub session: String,
    /// "Only ask from new addresses": `opt-in` lets users turn it on for themselves
    /// (`herarxctl remember on`); `off` forbids it.
    pub addresses: String,
    /// How long a remote address stays remembered after a second factor from it.
    pub address_for: String,
    /// How long an SSH key that passed together with a second factor is remembered; `0`:
    /// never.
    pub ssh_keys: String,
    /// Whether a FIDO-backed SSH key (`sk-ssh-ed25519@openssh.com`,
    /// `sk-ecdsa-sha2-nistp256@openssh.com`) counts as the second factor itself.
    pub sk_keys_are_second_factor: bool,
    /// The PAM services whose `SSH_AUTH_INFO_0` is believed (sshd sets it).
    pub ssh_services: Vec<String>,
}

impl Default for RememberConfig {
    fn default() -> Self {
        RememberConfig {
            session: "0".into(),
            addresses: "off".into(),
            address_for: "30d".into(),
            ssh_keys: "0".into(),
            sk_keys_are_second_factor: false,
            ssh_services: vec!["sshd".into()],
        }
    }
}

/// A trusted network entry: `10.20.0.0/16`, `2001:db8::/32`, or a bare address (/32 or /128).
pub fn parse_network(entry: &str) -> Option<IpNet> {
    let entry = entry.trim();
    entry
        .parse::<IpNet>()
        .ok()
        .or_else(|| entry.parse::<IpAddr>().ok().map(IpNet::from))
}

/// The address of a PAM_RHOST that is an IP address (brackets allowed; an IPv4-mapped IPv6
/// address is its IPv4 address). Host names are never resolved: they give `None`.
pub fn rhost_address(rhost: &str) -> Option<IpAddr> {
    let h = rhost.trim();
    let h = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(h);
    match h.parse::<IpAddr>().ok()? {
        IpAddr::V6(v6) => Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)),
        v4 => Some(v4),
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: CONFIG_VERSION,
            store: StoreConfig::default(),
            totp: TotpConfig::default(),
            lockout: LockoutConfig::default(),
            login: LoginConfig::default(),
            network: NetworkConfig::default(),
            admin: AdminConfig::default(),
            remember: RememberConfig::default(),
            fido2: Fido2Config::default(),
            audit: AuditConfig::default(),
            email: EmailConfig::default(),
            sms: SmsConfig::default(),
            sent_codes: SentCodesConfig::default(),
            alerts: AlertsConfig::default(),
            services: BTreeMap::new(),
            parsed: parsed::ParsedCache::default(),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            state_dir: PathBuf::from("/var/lib/herarx"),
            key_file: PathBuf::new(),
        }
    }
}

impl Default for TotpConfig {
    fn default() -> Self {
        TotpConfig {
            issuer: "Herarx".into(),
            algorithm: "SHA1".into(),
            digits: 6,
            period: 30,
            skew: 1,
        }
    }
}

impl Default for LockoutConfig {
    fn default() -> Self {
        LockoutConfig {
            max_failures: 5,
            remote_max_failures: 20,
            window_seconds: 900,
            lockout_seconds: 900,
            max_lockout_seconds: 86_400,
        }
    }
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            no_factor: "deny".into(),
            required: "everyone".into(),
            required_groups: Vec::new(),
            exempt_groups: Vec::new(),
            allow_until: String::new(),
            enroll_window: "7d".into(),
            enroll_from: "local".into(),
            max_tries: 3,
            timeout_seconds: 180,
        }
    }
}

/// The TOTP algorithms `totp.algorithm` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl TotpAlgorithm {
    /// The spelling of the configuration file: `SHA1`, `SHA256`, `SHA512`.
    pub fn from_config(s: &str) -> Option<Self> {
        match s {
            "SHA1" => Some(TotpAlgorithm::Sha1),
            "SHA256" => Some(TotpAlgorithm::Sha256),
            "SHA512" => Some(TotpAlgorithm::Sha512),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TotpAlgorithm::Sha1 => "SHA1",
            TotpAlgorithm::Sha256 => "SHA256",
            TotpAlgorithm::Sha512 => "SHA512",
        }
    }
}

/// What happens at login for a user who must have a factor but has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoFactorPolicy {
    /// Enrol inside the login conversation (within the window, from where policy allows).
    Enroll,
    /// Refused, with a message saying how to enrol.
    Deny,
    /// `PAM_IGNORE`: the rest of the stack decides (like `nullok`).
    Allow,
}

impl NoFactorPolicy {
    /// The spelling of `login.no_factor` (`ignore` is the old name of `allow`).
    pub fn from_config(s: &str) -> Option<Self> {
        match s {
            "enroll" => Some(NoFactorPolicy::Enroll),
            "deny" => Some(NoFactorPolicy::Deny),
            "allow" | "ignore" => Some(NoFactorPolicy::Allow),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NoFactorPolicy::Enroll => "enroll",
            NoFactorPolicy::Deny => "deny",
            NoFactorPolicy::Allow => "allow",
        }
    }
}

/// Who must have a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Required {
    Everyone,
    Groups,
}

impl Required {
    /// The spelling of `login.required`.
    pub fn from_config(s: &str) -> Option<Self> {
        match s {
            "everyone" => Some(Required::Everyone),
            "groups" => Some(Required::Groups),
            _ => None,
        }
    }
}

/// Where enrolment inside the login is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollFrom {
    Local,
    /// Local logins and logins from a trusted network of the service.
    Trusted,
    Anywhere,
}

impl EnrollFrom {
    /// The spelling of `login.enroll_from`.
    pub fn from_config(s: &str) -> Option<Self> {
        match s {
            "local" => Some(EnrollFrom::Local),
            "trusted" => Some(EnrollFrom::Trusted),
            "anywhere" => Some(EnrollFrom::Anywhere),
            _ => None,
        }
    }
}

/// `30s`, `15m`, `36h`, `7d`, `2w` (or combined: `1d 12h`), or `0`.
pub fn parse_duration(text: &str) -> Option<u64> {
    let t = text.trim();
    if t == "0" {
        return Some(0);
    }
    humantime::parse_duration(t).ok().map(|d| d.as_secs())
}

/// `YYYY-MM-DD` as the unix time of that day's start, UTC.
pub fn parse_date(text: &str) -> Option<u64> {
    let t = text.trim();
    if t.len() != 10 {
        return None;
    }
    let at = humantime::parse_rfc3339(&format!("{t}T00:00:00Z")).ok()?;
    at.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// A POSIX group name as `groupadd` accepts it: `[a-z_][a-z0-9_-]*[$]?`, at most 32 bytes.
pub fn valid_group_name(name: &str) -> bool {
    let body = name.strip_suffix('$').unwrap_or(name);
    let mut chars = body.chars();
    name.len() <= 32
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// A configuration that could not be read or is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The file could not be read.
    Read { path: PathBuf, reason: String },
    /// The file is not valid TOML for this schema (syntax, unknown key, wrong type).
    Parse { path: PathBuf, reason: String },
    /// Parsed, but values are out of range. Each entry names the key and the fix.
    Invalid {
        path: Option<PathBuf>,
        problems: Vec<String>,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, reason } => write!(
                f,
                "cannot read the configuration file {}: {reason}",
                path.display()
            ),
            ConfigError::Parse { path, reason } => write!(
                f,
                "the configuration file {} is not valid: {}",
                path.display(),
                reason.trim_end()
            ),
            ConfigError::Invalid { path, problems } => {
                match path {
                    Some(p) => write!(f, "the configuration file {} is not valid:", p.display())?,
                    None => write!(f, "the configuration is not valid:")?,
                }
                for p in problems {
                    write!(f, "\n  {p}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads, parses and validates `path`. Every error names the file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let config = Config::parse(&text).map_err(|reason| ConfigError::Parse {
            path: path.to_owned(),
            reason,
        })?;
        config.validate().map_err(|problems| ConfigError::Invalid {
            path: Some(path.to_owned()),
            problems,
        })?;
        Ok(config)
    }

    /// Parses TOML text without validating the values. The error lists every problem found,
    /// one a line (see [`Config::parse_explained`]).
    pub fn parse(text: &str) -> Result<Config, String> {
        Config::parse_explained(text).map_err(|problems| problems.join("\n"))
    }

    /// Parses TOML text without validating the values. Each problem starts with `line N:`,
    /// names the key's full path (`login.no_factor`) and says what to write instead: for an
    /// unknown key the valid keys of its table (and the closest one), for a wrong type the
    /// type expected and an example.
    pub fn parse_explained(text: &str) -> Result<Config, Vec<String>> {
        explain::parse(text)
    }

    /// Parses and validates TOML text: every problem of the first step that finds any
    /// (syntax and schema first, then values).
    pub fn check_text(text: &str) -> Result<Config, Vec<String>> {
        let config = Config::parse_explained(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value; each problem names the key, the value and what is accepted.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.version != CONFIG_VERSION {
            problems.push(format!(
                "version = {}: this herarxd understands version {CONFIG_VERSION} only; \
                 set `version = {CONFIG_VERSION}` (see the herarx.toml shipped with this release)",
                self.version
            ));
        }
        let state_dir = &self.store.state_dir;
        if state_dir.as_os_str().is_empty() || !state_dir.is_absolute() {
            problems.push(format!(
                "store.state_dir = {:?}: must be an absolute directory path, e.g. \"/var/lib/herarx\"",
                state_dir.display().to_string()
            ));
        }
        let key_file = &self.store.key_file;
        if !key_file.as_os_str().is_empty() && !key_file.is_absolute() {
            problems.push(format!(
                "store.key_file = {:?}: must be empty (meaning <state_dir>/store.key) or an absolute path",
                key_file.display().to_string()
            ));
        }
        let issuer = &self.totp.issuer;
        if issuer.is_empty()
            || issuer.chars().count() > 64
            || issuer.contains(':')
            || issuer.chars().any(char::is_control)
        {
            problems.push(format!(
                "totp.issuer = {issuer:?}: must be 1 to 64 printable characters without ':'"
            ));
        }
        if TotpAlgorithm::from_config(&self.totp.algorithm).is_none() {
            problems.push(format!(
                "totp.algorithm = {:?}: must be \"SHA1\", \"SHA256\" or \"SHA512\" \
                 (SHA1 is what every authenticator app supports)",
                self.totp.algorithm
            ));
        }
        if !(6..=8).contains(&self.totp.digits) {
            problems.push(format!(
                "totp.digits = {}: must be 6, 7 or 8",
                self.totp.digits
            ));
        }
        if !(15..=120).contains(&self.totp.period) {
            problems.push(format!(
                "totp.period = {}: must be 15 to 120 (seconds; 30 is what authenticator apps use)",
                self.totp.period
            ));
        }
        if self.totp.skew > 10 {
            problems.push(format!(
                "totp.skew = {}: must be 0 to 10 (periods of clock drift accepted on each side; 1 is usual)",
                self.totp.skew
            ));
        }
        if !(1..=1000).contains(&self.lockout.max_failures) {
            problems.push(format!(
                "lockout.max_failures = {}: must be 1 to 1000",
                self.lockout.max_failures
            ));
        }
        if !(1..=31_536_000).contains(&self.lockout.window_seconds) {
            problems.push(format!(
                "lockout.window_seconds = {}: must be 1 to 31536000 (one year)",
                self.lockout.window_seconds
            ));
        }
        if !(1..=31_536_000).contains(&self.lockout.lockout_seconds) {
            problems.push(format!(
                "lockout.lockout_seconds = {}: must be 1 to 31536000 (one year)",
                self.lockout.lockout_seconds
            ));
        }
        if !(1..=100_000).contains(&self.lockout.remote_max_failures) {
            problems.push(format!(
                "lockout.remote_max_failures = {}: must be 1 to 100000",
                self.lockout.remote_max_failures
            ));
        }
        if !(1..=31_536_000).contains(&self.lockout.max_lockout_seconds) {
            problems.push(format!(
                "lockout.max_lockout_seconds = {}: must be 1 to 31536000 (one year)",
                self.lockout.max_lockout_seconds
            ));
        } else if self.lockout.max_lockout_seconds < self.lockout.lockout_seconds {
            problems.push(format!(
                "lockout.max_lockout_seconds = {} is shorter than lockout.lockout_seconds = {}: \
                 the cap on a lock must be at least the first lock; raise it or lower lockout_seconds",
                self.lockout.max_lockout_seconds, self.lockout.lockout_seconds
            ));
        }
        if self.lockout.remote_max_failures < self.lockout.max_failures {
            problems.push(format!(
                "lockout.remote_max_failures = {} is below lockout.max_failures = {}: one \
                 remote address would lock every remote login before its own lock; set it to \
                 at least max_failures (a few times it is usual)",
                self.lockout.remote_max_failures, self.lockout.max_failures
            ));
        }
        self.validate_policy(&mut problems);
        self.validate_remember(&mut problems);
        self.validate_fido2(&mut problems);
        self.validate_messaging(&mut problems);
        match parse_duration(&self.audit.retention) {
            None => problems.push(format!(
                "audit.retention = {:?}: not a duration; write e.g. \"365d\", \"90d\", or \"0\" to \
                 keep the audit trail forever",
                self.audit.retention
            )),
            Some(s) if s != 0 && s < 86_400 => problems.push(format!(
                "audit.retention = {:?}: at least one day (\"1d\"), or \"0\" to keep forever",
                self.audit.retention
            )),
            Some(_) => {}
        }
        if !AUDIT_MAX_ROWS_RANGE.contains(&self.audit.max_rows) {
            problems.push(format!(
                "audit.max_rows = {}: must be {} to {} (the oldest rows beyond it are \
                 dropped); the default, 1000000, is a few hundred megabytes at most",
                self.audit.max_rows,
                AUDIT_MAX_ROWS_RANGE.start(),
                AUDIT_MAX_ROWS_RANGE.end()
            ));
        }
        if !self.admin.group.is_empty() && !valid_group_name(&self.admin.group) {
            problems.push(format!(
                "admin.group = {:?}: not a group name (lowercase letters, digits, '_' and '-', \
                 starting with a letter or '_', at most 32 bytes), e.g. \"herarx-admin\"; \
                 empty means root only",
                self.admin.group
            ));
        }
        // Each wrong answer takes a step; leave room under the module's step cap.
        let max_tries_cap = herarx_proto::limits::STEPS_MAX - 1;
        if !(1..=max_tries_cap).contains(&self.login.max_tries) {
            problems.push(format!(
                "login.max_tries = {}: must be 1 to {max_tries_cap}",
                self.login.max_tries
            ));
        }
        if !(10..=3600).contains(&self.login.timeout_seconds) {
            problems.push(format!(
                "login.timeout_seconds = {}: must be 10 to 3600",
                self.login.timeout_seconds
            ));
        }
        check_networks("network.trusted", &self.network.trusted, &mut problems);
        for (name, service) in &self.services {
            if !valid_service_name(name) {
                problems.push(format!(
                    "[services.{name:?}]: a PAM service name must be 1 to {} printable \
                     characters without '/' (the file name in /etc/pam.d, e.g. \"sshd\")",
                    herarx_proto::limits::SERVICE_MAX
                ));
            }
            if let Some(list) = &service.trusted_networks {
                check_networks(
                    &format!("services.{name}.trusted_networks"),
                    list,
                    &mut problems,
                );
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The TOTP algorithm of new enrolments, as the caller's own type (herarxd maps
    /// [`TotpAlgorithm`] into its `totp::Algorithm`). SHA1 when the value is invalid (never
    /// after [`Config::validate`]).
    pub fn totp_algorithm<A: From<TotpAlgorithm>>(&self) -> A {
        A::from(self.parsed().totp_algorithm)
    }

    /// The typed values, parsed on the first call (see `parsed.rs`).
    fn parsed(&self) -> &parsed::Parsed {
        self.parsed.get(self)
    }

    fn validate_remember(&self, problems: &mut Vec<String>) {
        let r = &self.remember;
        for (key, value) in [
            ("remember.session", &r.session),
            ("remember.address_for", &r.address_for),
            ("remember.ssh_keys", &r.ssh_keys),
        ] {
            match parse_duration(value) {
                None => problems.push(format!(
                    "{key} = {value:?}: not a duration; write e.g. \"8h\", \"30d\", \"2w\", \
                     or \"0\" for off"
                )),
                Some(s) if s > 31_536_000 => {
                    problems.push(format!("{key} = {value:?}: at most one year (\"365d\")"))
                }
                Some(_) => {}
            }
        }
        if !matches!(r.addresses.as_str(), "off" | "opt-in") {
            problems.push(format!(
                "remember.addresses = {:?}: must be \"off\" or \"opt-in\" (users then turn it \
                 on with `herarxctl remember on`)",
                r.addresses
            ));
        }
        for (i, name) in r.ssh_services.iter().enumerate() {
            if !valid_service_name(name) {
                problems.push(format!(
                    "remember.ssh_services[{i}] = {name:?}: not a PAM service name (the file \
                     name in /etc/pam.d that sshd uses, e.g. \"sshd\")"
                ));
            }
        }
        if r.sk_keys_are_second_factor && r.ssh_services.is_empty() {
            problems.push(
                "remember.sk_keys_are_second_factor = true with an empty remember.ssh_services: \
                 no service's SSH key would be believed; list sshd's PAM service"
                    .into(),
            );
        }
        for (name, service) in &self.services {
            for (i, m) in service.methods.iter().flatten().enumerate() {
                if !METHODS.contains(&m.as_str()) {
                    problems.push(format!(
                        "services.{name}.methods[{i}] = {m:?}: not a method; the methods are {}",
                        METHODS
                            .iter()
                            .map(|m| format!("\"{m}\""))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
            if service.methods.as_ref().is_some_and(Vec::is_empty) {
                problems.push(format!(
                    "services.{name}.methods = []: no method would be accepted, so every login \
                     of a user with a factor would fail; list at least one, or remove the key"
                ));
            }
        }
    }

    fn validate_fido2(&self, problems: &mut Vec<String>) {
        let f = &self.fido2;
        if !f.rp_id.is_empty() {
            let name = f.rp_id.strip_prefix("pam://").unwrap_or("");
            if name.is_empty()
                || name.len() > 200
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            {
                problems.push(format!(
                    "fido2.rp_id = {:?}: must be \"pam://\" and a host-like name (letters, \
                     digits, '.', '-', '_'), e.g. \"pam://web1.example.com\"; empty means this \
                     host's name at first start. Changing it orphans every registered key",
                    f.rp_id
                ));
            }
        }
        if !matches!(f.user_verification.as_str(), "discouraged" | "required") {
            problems.push(format!(
                "fido2.user_verification = {:?}: must be \"discouraged\" (a touch) or \
                 \"required\" (the key's PIN or biometrics too)",
                f.user_verification
            ));
        }
        if !(5..=120).contains(&f.touch_timeout_seconds) {
            problems.push(format!(
                "fido2.touch_timeout_seconds = {}: must be 5 to 120",
                f.touch_timeout_seconds
            ));
        } else if (10..=3600).contains(&self.login.timeout_seconds)
            && f.touch_timeout_seconds + 5 > self.login.timeout_seconds
        {
            problems.push(format!(
                "fido2.touch_timeout_seconds = {} leaves no time in login.timeout_seconds = {}: \
                 a login must outlast its touch; lower the first or raise the second",
                f.touch_timeout_seconds, self.login.timeout_seconds
            ));
        }
    }

    /// Whether logins and enrolments require user verification (PIN) of security keys.
    pub fn fido2_uv_required(&self) -> bool {
        self.parsed().fido2_uv_required
    }

    /// Seconds audit rows are kept; 0: forever.
    pub fn audit_retention_seconds(&self) -> u64 {
        self.parsed().audit_retention_seconds
    }

    /// Seconds of session trust; 0: off.
    pub fn session_trust_seconds(&self) -> u64 {
        self.parsed().session_trust_seconds
    }

    /// Seconds an address is remembered, when users may opt in; `None`: forbidden.
    pub fn address_memory_seconds(&self) -> Option<u64> {
        self.parsed().address_memory_seconds
    }

    /// Seconds an SSH key is remembered; 0: never.
    pub fn ssh_key_memory_seconds(&self) -> u64 {
        self.parsed().ssh_key_memory_seconds
    }

    /// Whether `service`'s `SSH_AUTH_INFO_0` is believed (it is in `remember.ssh_services`).
    pub fn believes_ssh_auth_info(&self, service: &str) -> bool {
        self.parsed().service(service).believes_ssh_auth_info
    }

    /// Whether logins of `service` count as remote whatever their PAM_RHOST. SSH is remote by
    /// default: a login relayed to sshd through a loopback proxy or tunnel, or an sshd that sets
    /// no rhost, must not count as the console. `always_remote = false` says otherwise.
    pub fn always_remote(&self, service: &str) -> bool {
        self.parsed().service(service).always_remote
    }

    /// Whether `service` accepts `method` (`totp`, `backup-code`).
    pub fn service_accepts(&self, service: &str, method: &str) -> bool {
        let Some(bit) = parsed::method_bit(method) else {
            // Not one of METHODS: only a list that names it (never after validation) accepts it.
            return match self.services.get(service).and_then(|s| s.methods.as_ref()) {
                Some(list) => list.iter().any(|m| m == method),
                None => true,
            };
        };
        self.parsed()
            .service(service)
            .methods
            .is_none_or(|bits| bits & bit != 0)
    }

    fn validate_policy(&self, problems: &mut Vec<String>) {
        let login = &self.login;
        // From the strings, not the accessors: validating must not fill the parsed cache (a
        // loaded configuration may still be edited before its first use).
        let no_factor = NoFactorPolicy::from_config(&login.no_factor);
        if no_factor.is_none() {
            problems.push(format!(
                "login.no_factor = {:?}: must be \"enroll\", \"deny\" or \"allow\"",
                login.no_factor
            ));
        }
        let required = Required::from_config(&login.required);
        if required.is_none() {
            problems.push(format!(
                "login.required = {:?}: must be \"everyone\" or \"groups\" (then list them in \
                 login.required_groups)",
                login.required
            ));
        }
        for (key, list) in [
            ("login.required_groups", &login.required_groups),
            ("login.exempt_groups", &login.exempt_groups),
        ] {
            for (i, g) in list.iter().enumerate() {
                if !valid_group_name(g) {
                    problems.push(format!(
                        "{key}[{i}] = {g:?}: not a group name (lowercase letters, digits, '_' \
                         and '-', starting with a letter or '_', at most 32 bytes), e.g. \"wheel\""
                    ));
                }
            }
        }
        if required == Some(Required::Groups) && login.required_groups.is_empty() {
            problems.push(
                "login.required = \"groups\" with an empty login.required_groups: nobody would \
                 have to use a second factor; list the groups, or set required = \"everyone\""
                    .into(),
            );
        }
        if required == Some(Required::Everyone) && !login.required_groups.is_empty() {
            problems.push(
                "login.required_groups is set but login.required = \"everyone\": the list would \
                 be ignored; set required = \"groups\", or empty the list"
                    .into(),
            );
        }
        for g in &login.exempt_groups {
            if login.required_groups.contains(g) {
                problems.push(format!(
                    "group {g:?} is both in login.required_groups and login.exempt_groups: \
                     exempt wins, so it would never be required; remove it from one list"
                ));
            }
        }
        if !login.allow_until.is_empty() {
            if parse_date(&login.allow_until).is_none() {
                problems.push(format!(
                    "login.allow_until = {:?}: not a date; write it as YYYY-MM-DD (UTC), e.g. \
                     \"2027-01-31\", or empty for no deadline",
                    login.allow_until
                ));
            } else if no_factor.is_some_and(|p| p != NoFactorPolicy::Allow) {
                problems.push(format!(
                    "login.allow_until = {:?} only applies with login.no_factor = \"allow\" \
                     (it is {:?}); remove it, or set no_factor = \"allow\"",
                    login.allow_until, login.no_factor
                ));
            }
        }
        match parse_duration(&login.enroll_window) {
            None => problems.push(format!(
                "login.enroll_window = {:?}: not a duration; write e.g. \"7d\", \"36h\", \
                 \"2w\", or \"0\" for no limit",
                login.enroll_window
            )),
            Some(s) if s > 31_536_000 => problems.push(format!(
                "login.enroll_window = {:?}: at most one year (\"365d\"); \"0\" means no limit",
                login.enroll_window
            )),
            Some(_) => {}
        }
        if EnrollFrom::from_config(&login.enroll_from).is_none() {
            problems.push(format!(
                "login.enroll_from = {:?}: must be \"local\", \"trusted\" (local or a trusted \
                 network) or \"anywhere\"",
                login.enroll_from
            ));
        }
    }

    pub fn no_factor_policy(&self) -> Option<NoFactorPolicy> {
        self.parsed().no_factor
    }

    pub fn required(&self) -> Option<Required> {
        self.parsed().required
    }

    pub fn enroll_from(&self) -> Option<EnrollFrom> {
        self.parsed().enroll_from
    }

    /// Seconds of the enrolment window; 0 for no limit.
    pub fn enroll_window_seconds(&self) -> u64 {
        self.parsed().enroll_window_seconds
    }

    /// The start of the `allow_until` day, when set.
    pub fn allow_until(&self) -> Option<u64> {
        self.parsed().allow_until
    }

    /// The trusted networks of `service`: its `trusted_networks` when set, else
    /// `network.trusted`. Entries that do not parse are left out (never after validation).
    pub fn trusted_networks(&self, service: &str) -> Vec<IpNet> {
        self.parsed().trusted_of(service).to_vec()
    }

    /// The trusted network of `service` that contains `rhost`, when `rhost` is an IP address
    /// (host names never match: nothing is resolved).
    pub fn trusted_network_of(&self, service: &str, rhost: &str) -> Option<IpNet> {
        let addr = rhost_address(rhost)?;
        self.parsed()
            .trusted_of(service)
            .iter()
            .find(|net| net.contains(&addr))
            .copied()
    }

    /// The master key file: `store.key_file`, or `<state_dir>/store.key` when empty.
    pub fn key_file(&self) -> PathBuf {
        if self.store.key_file.as_os_str().is_empty() {
            self.store.state_dir.join("store.key")
        } else {
            self.store.key_file.clone()
        }
    }
}

fn valid_service_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= herarx_proto::limits::SERVICE_MAX
        && !name.contains('/')
        && !name.chars().any(|c| c.is_control() || c.is_whitespace())
}

fn check_networks(key: &str, list: &[String], problems: &mut Vec<String>) {
    for (i, entry) in list.iter().enumerate() {
        if parse_network(entry).is_none() {
            problems.push(format!(
                "{key}[{i}] = {entry:?}: not an IPv4/IPv6 network in CIDR form, \
                 e.g. \"10.20.0.0/16\", \"2001:db8::/32\" or a single address \"192.0.2.7\""
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../../packaging/herarx.toml");

    fn problems_of(text: &str) -> Vec<String> {
        match Config::parse(text) {
            Ok(c) => c.validate().err().unwrap_or_default(),
            Err(e) => vec![e],
        }
    }

    #[test]
    fn the_shipped_example_parses_and_equals_the_defaults() {
        let config = Config::parse(SHIPPED).unwrap();
        assert_eq!(config, Config::default());
        config.validate().unwrap();
    }

    #[test]
    fn the_shipped_example_loads_from_its_file() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/herarx.toml");
        assert_eq!(Config::load(&path).unwrap(), Config::default());
    }

    #[test]
    fn an_empty_file_means_the_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn an_unknown_key_is_rejected_by_name() {
        let e = Config::parse("version = 1\n[totp]\ndigts = 6\n").unwrap_err();
        assert!(e.contains("digts"), "{e}");
        let e = Config::parse("colour = \"blue\"\n").unwrap_err();
        assert!(e.contains("colour"), "{e}");
        let e = Config::parse("[loggin]\nmax_tries = 3\n").unwrap_err();
        assert!(e.contains("loggin"), "{e}");
    }

    #[test]
    fn bad_values_are_rejected_naming_the_key_and_the_fix() {
        let cases = [
            ("[totp]\ndigits = 9\n", "totp.digits = 9: must be 6, 7 or 8"),
            ("[totp]\nalgorithm = \"MD5\"\n", "totp.algorithm = \"MD5\""),
            ("[totp]\nperiod = 5\n", "totp.period = 5: must be 15 to 120"),
            ("[totp]\nskew = 11\n", "totp.skew = 11"),
            ("[totp]\nissuer = \"a:b\"\n", "totp.issuer = \"a:b\""),
            ("[lockout]\nmax_failures = 0\n", "lockout.max_failures = 0"),
            (
                "[lockout]\nwindow_seconds = 0\n",
                "lockout.window_seconds = 0",
            ),
            (
                "[lockout]\nlockout_seconds = 0\n",
                "lockout.lockout_seconds = 0",
            ),
            (
                "[login]\nno_factor = \"maybe\"\n",
                "login.no_factor = \"maybe\": must be \"enroll\", \"deny\" or \"allow\"",
            ),
            (
                "[login]\nrequired = \"some\"\n",
                "login.required = \"some\"",
            ),
            (
                "[login]\nrequired = \"groups\"\n",
                "with an empty login.required_groups",
            ),
            (
                "[login]\nrequired_groups = [\"wheel\"]\n",
                "login.required_groups is set but login.required = \"everyone\"",
            ),
            (
                "[login]\nexempt_groups = [\"Bad Group\"]\n",
                "login.exempt_groups[0] = \"Bad Group\": not a group name",
            ),
            (
                "[login]\nrequired = \"groups\"\nrequired_groups = [\"ops\"]\nexempt_groups = [\"ops\"]\n",
                "group \"ops\" is both in login.required_groups and login.exempt_groups",
            ),
            (
                "[login]\nno_factor = \"allow\"\nallow_until = \"31/01/2027\"\n",
                "login.allow_until = \"31/01/2027\": not a date",
            ),
            (
                "[login]\nallow_until = \"2027-01-31\"\n",
                "only applies with login.no_factor = \"allow\"",
            ),
            (
                "[login]\nenroll_window = \"a week\"\n",
                "login.enroll_window = \"a week\": not a duration",
            ),
            (
                "[login]\nenroll_from = \"lan\"\n",
                "login.enroll_from = \"lan\"",
            ),
            (
                "[lockout]\nmax_lockout_seconds = 60\n",
                "lockout.max_lockout_seconds = 60 is shorter than lockout.lockout_seconds = 900",
            ),
            (
                "[lockout]\nremote_max_failures = 2\n",
                "lockout.remote_max_failures = 2 is below lockout.max_failures = 5",
            ),
            (
                "[admin]\ngroup = \"-x\"\n",
                "admin.group = \"-x\": not a group name",
            ),
            (
                "[fido2]\nrp_id = \"web1\"\n",
                "fido2.rp_id = \"web1\": must be \"pam://\"",
            ),
            (
                "[fido2]\nuser_verification = \"always\"\n",
                "fido2.user_verification = \"always\"",
            ),
            (
                "[fido2]\ntouch_timeout_seconds = 300\n",
                "fido2.touch_timeout_seconds = 300: must be 5 to 120",
            ),
            (
                "[fido2]\ntouch_timeout_seconds = 60\n[login]\ntimeout_seconds = 60\n",
                "leaves no time in login.timeout_seconds = 60",
            ),
            (
                "[services.sudo]\nmethods = [\"fax\"]\n",
                "services.sudo.methods[0] = \"fax\": not a method",
            ),
            (
                "[remember]\nsession = \"a while\"\n",
                "remember.session = \"a while\": not a duration",
            ),
            (
                "[remember]\naddresses = \"yes\"\n",
                "remember.addresses = \"yes\"",
            ),
            ("[login]\nmax_tries = 0\n", "login.max_tries = 0"),
            (
                "[audit]\nretention = \"1h\"\n",
                "audit.retention = \"1h\": at least one day",
            ),
            (
                "[audit]\nretention = \"forever\"\n",
                "audit.retention = \"forever\": not a duration",
            ),
            (
                "[audit]\nmax_rows = 10\n",
                "audit.max_rows = 10: must be 1000",
            ),
            (
                "[audit]\nmax_rows = 0\n",
                "audit.max_rows = 0: must be 1000",
            ),
            (
                "[login]\ntimeout_seconds = 1\n",
                "login.timeout_seconds = 1",
            ),
            (
                "[store]\nstate_dir = \"relative\"\n",
                "store.state_dir = \"relative\"",
            ),
            ("[store]\nkey_file = \"k\"\n", "store.key_file = \"k\""),
        ];
        for (text, expected) in cases {
            let problems = problems_of(text);
            assert_eq!(problems.len(), 1, "{text}: {problems:?}");
            assert!(problems[0].contains(expected), "{text}: {problems:?}");
        }
    }

    #[test]
    fn a_wrong_type_is_a_parse_error_that_shows_the_key() {
        let e = Config::parse("[totp]\ndigits = \"six\"\n").unwrap_err();
        assert!(e.contains("digits"), "{e}");
    }

    #[test]
    fn a_wrong_version_is_refused() {
        let problems = problems_of("version = 2\n");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("version = 2:"), "{problems:?}");
    }

    #[test]
    fn load_names_the_file_in_its_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("herarx.toml");
        let e = Config::load(&path).unwrap_err().to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");

        std::fs::write(&path, "[totp]\ndigits = 9\n").unwrap();
        let e = Config::load(&path).unwrap_err().to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains("totp.digits = 9"), "{e}");

        std::fs::write(&path, "[totp\n").unwrap();
        let e = Config::load(&path).unwrap_err().to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
    }

    #[test]
    fn durations_dates_and_group_names() {
        assert_eq!(parse_duration("7d"), Some(7 * 86_400));
        assert_eq!(parse_duration("1d 12h"), Some(36 * 3600));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_date("1970-01-02"), Some(86_400));
        assert_eq!(parse_date("2027-02-30"), None);
        assert_eq!(parse_date("2027-1-3"), None);
        for ok in ["wheel", "_x", "herarx-admin", "a1$"] {
            assert!(valid_group_name(ok), "{ok}");
        }
        for bad in ["", "Wheel", "1x", "-x", "a b", &"a".repeat(33)] {
            assert!(!valid_group_name(bad), "{bad}");
        }
        let c = Config::parse("[login]\nno_factor = \"ignore\"\n").unwrap();
        assert_eq!(
            c.no_factor_policy(),
            Some(NoFactorPolicy::Allow),
            "old name"
        );
    }

    #[test]
    fn the_key_file_defaults_to_the_state_dir() {
        let mut c = Config::default();
        assert_eq!(c.key_file(), PathBuf::from("/var/lib/herarx/store.key"));
        c.store.key_file = PathBuf::from("/etc/herarx/key");
        assert_eq!(c.key_file(), PathBuf::from("/etc/herarx/key"));
    }

    #[test]
    fn trusted_networks_parse_and_bad_ones_are_named() {
        let c = Config::parse(
            "[network]\ntrusted = [\"10.20.0.0/16\", \"192.0.2.7\", \"2001:db8::/32\"]\n\
             [services.sshd]\ntrusted_networks = []\n\
             [services.sudo]\ntrusted_networks = [\"::1\"]\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.services["sshd"].trusted_networks, Some(vec![]));
        assert_eq!(
            c.trusted_networks("login")
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["10.20.0.0/16", "192.0.2.7/32", "2001:db8::/32"]
        );
        assert!(c.trusted_networks("sshd").is_empty());
        assert_eq!(c.trusted_networks("sudo")[0].to_string(), "::1/128");

        let problems = problems_of("[network]\ntrusted = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with(
                "network.trusted[1] = \"10.0.0.0/33\": not an IPv4/IPv6 network in CIDR form, e.g. \"10.20.0.0/16\""
            ),
            "{problems:?}"
        );
        for bad in ["office", "", "10.0.0/8", "10.0.0.0/", "fe80::1%eth0"] {
            let text = format!("[services.sudo]\ntrusted_networks = [{bad:?}]\n");
            let problems = problems_of(&text);
            assert_eq!(problems.len(), 1, "{text}: {problems:?}");
            assert!(
                problems[0].starts_with(&format!("services.sudo.trusted_networks[0] = {bad:?}:")),
                "{problems:?}"
            );
        }
        let problems = problems_of("[services.\"a/b\"]\ntrusted_networks = []\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("PAM service name"), "{problems:?}");
        let problems = problems_of("[services.\"\"]\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        let e = Config::parse("[services.sshd]\ntrusted = []\n").unwrap_err();
        assert!(e.contains("trusted"), "{e}");
        let e = Config::parse("[network]\ntrusted = \"10.0.0.0/8\"\n").unwrap_err();
        assert!(e.contains("trusted"), "{e}");
    }

    #[test]
    fn only_ip_addresses_match_trusted_networks() {
        let c = Config::parse(
            "[network]\ntrusted = [\"10.20.0.0/16\", \"2001:db8::/32\", \"127.0.0.2/32\"]\n\
             [services.sshd]\ntrusted_networks = [\"192.0.2.0/24\"]\n\
             [services.su]\ntrusted_networks = []\n",
        )
        .unwrap();
        let m = |service: &str, rhost: &str| {
            c.trusted_network_of(service, rhost).map(|n| n.to_string())
        };
        assert_eq!(m("sudo", "10.20.3.4").as_deref(), Some("10.20.0.0/16"));
        assert_eq!(
            m("sudo", "::ffff:10.20.3.4").as_deref(),
            Some("10.20.0.0/16")
        );
        assert_eq!(m("sudo", "2001:db8:1::5").as_deref(), Some("2001:db8::/32"));
        assert_eq!(m("sudo", "[2001:db8::5]").as_deref(), Some("2001:db8::/32"));
        assert_eq!(m("sudo", "127.0.0.2").as_deref(), Some("127.0.0.2/32"));
        for untrusted in [
            "10.21.0.1",
            "127.0.0.1",
            "127.0.0.3",
            "2001:db9::1",
            "",
            "localhost",
            "office.example.com",
            "10.20.3.4.nip.io",
        ] {
            assert_eq!(m("sudo", untrusted), None, "{untrusted}");
        }
        // A service's own list replaces the global one.
        assert_eq!(m("sshd", "10.20.3.4"), None);
        assert_eq!(m("sshd", "192.0.2.9").as_deref(), Some("192.0.2.0/24"));
        assert_eq!(m("su", "10.20.3.4"), None);
        assert_eq!(
            Config::default().trusted_network_of("sshd", "10.20.3.4"),
            None
        );
    }
}
