//! The typed values parsed once per configuration: they equal what the accessors computed from
//! the strings on every call before (`legacy` below is that code), a new configuration sees new
//! values, and the cache never shows in equality, clones or validation.

use std::path::Path;

use ipnet::IpNet;

use super::*;
use crate::{parse_date, parse_duration, parse_network, rhost_address};

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Every configuration this repository ships as an example, by where it is: the packaged
/// herarx.toml and the TOML blocks of herarx.toml(5).
fn shipped_examples() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let read = |rel: &str| {
        std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    };
    out.push((
        "packaging/herarx.toml".into(),
        read("packaging/herarx.toml"),
    ));
    let man = read("packaging/man/herarx.toml.5");
    let mut block: Option<Vec<String>> = None;
    for line in man.lines() {
        match (line, block.as_mut()) {
            (".nf", None) => block = Some(Vec::new()),
            (".fi", Some(lines)) => {
                let text = lines.join("\n") + "\n";
                if text.starts_with('[') || text.starts_with("version") {
                    let n = out.len();
                    out.push((format!("herarx.toml.5 example {n}"), text));
                }
                block = None;
            }
            (_, Some(lines)) => lines.push(line.replace("\\-", "-")),
            _ => {}
        }
    }
    out
}

/// The fuzz seeds that are TOML of the schema (not all of them valid values).
fn fuzz_seeds() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let seeds = root().join("fuzz/seeds/config");
    let mut names: Vec<_> = std::fs::read_dir(&seeds)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".toml") && n != "wrong-types.toml")
        .collect();
    names.sort();
    for name in names {
        let rel = format!("fuzz/seeds/config/{name}");
        let text = std::fs::read_to_string(root().join(&rel)).unwrap();
        out.push((rel, text));
    }
    out
}

/// What every accessor returned before the values were parsed once: the strings parsed on
/// each call.
#[derive(Debug, PartialEq)]
struct Answers {
    durations: [u64; 6],
    address_memory: Option<u64>,
    allow_until: Option<u64>,
    policy: (
        Option<NoFactorPolicy>,
        Option<Required>,
        Option<EnrollFrom>,
        TotpAlgorithm,
        bool,
    ),
    services: Vec<ServiceAnswers>,
}

#[derive(Debug, PartialEq)]
struct ServiceAnswers {
    service: String,
    trusted: Vec<IpNet>,
    matches: Vec<Option<IpNet>>,
    accepts: Vec<bool>,
    always_remote: bool,
    believes: bool,
}

const RHOSTS: &[&str] = &[
    "10.20.3.4",
    "::ffff:10.20.3.4",
    "[2001:db8::5]",
    "192.0.2.7",
    "192.0.2.9",
    "127.0.0.1",
    "::1",
    "",
    "localhost",
];

fn services_of(c: &Config) -> Vec<String> {
    let mut names: Vec<String> = ["sshd", "sudo", "login", "su", "gdm-password", "nosuch"]
        .iter()
        .map(|s| s.to_string())
        .chain(c.services.keys().cloned())
        .chain(c.remember.ssh_services.iter().cloned())
        .collect();
    names.sort();
    names.dedup();
    names
}

fn methods() -> Vec<&'static str> {
    METHODS.iter().copied().chain(["fax", "", "TOTP"]).collect()
}

fn legacy(c: &Config) -> Answers {
    let d = |s: &str, or: u64| parse_duration(s).unwrap_or(or);
    let trusted = |service: &str| -> Vec<IpNet> {
        let list = c
            .services
            .get(service)
            .and_then(|s| s.trusted_networks.as_ref())
            .unwrap_or(&c.network.trusted);
        list.iter().filter_map(|e| parse_network(e)).collect()
    };
    let believes = |service: &str| c.remember.ssh_services.iter().any(|s| s == service);
    Answers {
        durations: [
            d(&c.remember.session, 0),
            d(&c.audit.retention, 0),
            d(&c.remember.ssh_keys, 0),
            d(&c.login.enroll_window, 0),
            d(&c.sent_codes.valid_for, 300),
            d(&c.sent_codes.resend_after, 30),
        ],
        address_memory: (c.remember.addresses == "opt-in")
            .then(|| d(&c.remember.address_for, 0))
            .filter(|s| *s > 0),
        allow_until: parse_date(&c.login.allow_until),
        policy: (
            match c.login.no_factor.as_str() {
                "enroll" => Some(NoFactorPolicy::Enroll),
                "deny" => Some(NoFactorPolicy::Deny),
                "allow" | "ignore" => Some(NoFactorPolicy::Allow),
                _ => None,
            },
            match c.login.required.as_str() {
                "everyone" => Some(Required::Everyone),
                "groups" => Some(Required::Groups),
                _ => None,
            },
            match c.login.enroll_from.as_str() {
                "local" => Some(EnrollFrom::Local),
                "trusted" => Some(EnrollFrom::Trusted),
                "anywhere" => Some(EnrollFrom::Anywhere),
                _ => None,
            },
            TotpAlgorithm::from_config(&c.totp.algorithm).unwrap_or(TotpAlgorithm::Sha1),
            c.fido2.user_verification == "required",
        ),
        services: services_of(c)
            .into_iter()
            .map(|service| {
                let nets = trusted(&service);
                ServiceAnswers {
                    matches: RHOSTS
                        .iter()
                        .map(|r| {
                            let addr = rhost_address(r)?;
                            nets.iter().find(|n| n.contains(&addr)).copied()
                        })
                        .collect(),
                    accepts: methods()
                        .into_iter()
                        .map(
                            |m| match c.services.get(&service).and_then(|s| s.methods.as_ref()) {
                                Some(list) => list.iter().any(|x| x == m),
                                None => true,
                            },
                        )
                        .collect(),
                    always_remote: match c.services.get(&service).and_then(|s| s.always_remote) {
                        Some(set) => set,
                        None => service == "sshd" || believes(&service),
                    },
                    believes: believes(&service),
                    trusted: nets,
                    service,
                }
            })
            .collect(),
    }
}

fn accessors(c: &Config) -> Answers {
    Answers {
        durations: [
            c.session_trust_seconds(),
            c.audit_retention_seconds(),
            c.ssh_key_memory_seconds(),
            c.enroll_window_seconds(),
            c.sent_code_valid_seconds(),
            c.sent_code_resend_seconds(),
        ],
        address_memory: c.address_memory_seconds(),
        allow_until: c.allow_until(),
        policy: (
            c.no_factor_policy(),
            c.required(),
            c.enroll_from(),
            c.totp_algorithm(),
            c.fido2_uv_required(),
        ),
        services: services_of(c)
            .into_iter()
            .map(|service| ServiceAnswers {
                trusted: c.trusted_networks(&service),
                matches: RHOSTS
                    .iter()
                    .map(|r| c.trusted_network_of(&service, r))
                    .collect(),
                accepts: methods()
                    .into_iter()
                    .map(|m| c.service_accepts(&service, m))
                    .collect(),
                always_remote: c.always_remote(&service),
                believes: c.believes_ssh_auth_info(&service),
                service,
            })
            .collect(),
    }
}

/// Configurations that exercise every parsed value, valid ones and some that validation
/// refuses (the accessors' fallbacks must not change either).
const VARIED: &[&str] = &[
    "[remember]\nsession = \"8h\"\naddresses = \"opt-in\"\naddress_for = \"2w\"\n\
     ssh_keys = \"1d 12h\"\nssh_services = [\"sshd\", \"sshd-alt\"]\n\
     [audit]\nretention = \"90d\"\n\
     [login]\nno_factor = \"enroll\"\nrequired = \"groups\"\nrequired_groups = [\"wheel\"]\n\
     enroll_window = \"36h\"\nenroll_from = \"trusted\"\n\
     [totp]\nalgorithm = \"SHA512\"\n[fido2]\nuser_verification = \"required\"\n\
     [sent_codes]\nvalid_for = \"10m\"\nresend_after = \"1m\"\n\
     [network]\ntrusted = [\"10.20.0.0/16\", \"192.0.2.7\", \"2001:db8::/32\"]\n\
     [services.sshd]\ntrusted_networks = [\"192.0.2.0/24\"]\nmethods = [\"totp\"]\n\
     [services.sshd-alt]\nalways_remote = false\n\
     [services.xrdp]\nalways_remote = true\nmethods = [\"fido2\", \"backup-code\"]\n\
     [services.su]\ntrusted_networks = []\n",
    "[login]\nno_factor = \"ignore\"\nallow_until = \"2027-01-31\"\n\
     [remember]\naddresses = \"opt-in\"\naddress_for = \"0\"\n\
     ssh_services = [\"sshd\", \"sshd-2\"]\n",
    // Refused by validate: the accessors fall back as they always did.
    "[login]\nno_factor = \"maybe\"\nrequired = \"some\"\nenroll_from = \"lan\"\n\
     enroll_window = \"a week\"\nallow_until = \"31/01/2027\"\n\
     [remember]\nsession = \"a while\"\naddresses = \"opt-in\"\naddress_for = \"soon\"\n\
     [audit]\nretention = \"forever\"\n[totp]\nalgorithm = \"MD5\"\n\
     [sent_codes]\nvalid_for = \"x\"\nresend_after = \"y\"\n\
     [network]\ntrusted = [\"office\", \"10.0.0.0/8\"]\n\
     [services.sudo]\nmethods = [\"fax\", \"totp\"]\ntrusted_networks = [\"10.0.0.0/33\"]\n\
     [services.login]\nmethods = []\n",
];

#[test]
fn every_shipped_example_parses_validates_and_answers_as_before() {
    let examples = shipped_examples();
    assert!(
        examples.len() >= 3,
        "the examples were not all found: {:?}",
        examples.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    for (name, text) in examples {
        let config = Config::check_text(&text).unwrap_or_else(|p| panic!("{name}: {p:?}"));
        assert_eq!(accessors(&config), legacy(&config), "{name}");
    }
    let seeds = fuzz_seeds();
    assert!(seeds.len() >= 3, "{seeds:?}");
    for (name, text) in seeds {
        let config = Config::parse(&text).unwrap_or_else(|p| panic!("{name}: {p}"));
        assert_eq!(accessors(&config), legacy(&config), "{name}");
    }
}

#[test]
fn the_accessors_answer_as_the_string_parsing_did() {
    for text in VARIED {
        let config = Config::parse(text).unwrap();
        assert_eq!(accessors(&config), legacy(&config), "{text}");
        // Asked again, from the cache: the same.
        assert_eq!(accessors(&config), legacy(&config), "{text}");
    }
    let refused = Config::parse(VARIED[2]).unwrap();
    assert!(refused.validate().is_err());
    assert_eq!(refused.enroll_window_seconds(), 0);
    assert_eq!(refused.sent_code_valid_seconds(), 300);
    assert!(refused.service_accepts("sudo", "fax"), "named in its list");
    assert!(!refused.service_accepts("login", "totp"));
}

#[test]
fn the_typed_values_are_parsed_once_on_first_use() {
    let config = Config::parse(VARIED[0]).unwrap();
    assert!(!config.parsed.is_filled());
    config.validate().unwrap();
    assert!(
        !config.parsed.is_filled(),
        "validate leaves the cache empty"
    );
    assert_eq!(config.session_trust_seconds(), 8 * 3600);
    assert!(config.parsed.is_filled());
    let p = config.parsed();
    assert_eq!(p.session_trust_seconds, 8 * 3600);
    assert_eq!(p.address_memory_seconds, Some(14 * 86_400));
    assert_eq!(p.ssh_key_memory_seconds, 36 * 3600);
    assert_eq!(p.audit_retention_seconds, 90 * 86_400);
    assert_eq!(p.enroll_window_seconds, 36 * 3600);
    assert_eq!(p.sent_code_valid_seconds, 600);
    assert_eq!(p.sent_code_resend_seconds, 60);
    assert_eq!(p.no_factor, Some(NoFactorPolicy::Enroll));
    assert_eq!(p.required, Some(Required::Groups));
    assert_eq!(p.enroll_from, Some(EnrollFrom::Trusted));
    assert_eq!(p.totp_algorithm, TotpAlgorithm::Sha512);
    assert!(p.fido2_uv_required);
    let shown: Vec<String> = p.trusted.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["10.20.0.0/16", "192.0.2.7/32", "2001:db8::/32"]);
    let sshd = p.service("sshd");
    assert_eq!(
        sshd.trusted.as_deref().map(|n| n[0].to_string()).as_deref(),
        Some("192.0.2.0/24")
    );
    assert_eq!(sshd.methods, method_bit("totp"));
    assert!(sshd.always_remote && sshd.believes_ssh_auth_info);
    let alt = p.service("sshd-alt");
    assert!(!alt.always_remote && alt.believes_ssh_auth_info, "{alt:?}");
    let xrdp = p.service("xrdp");
    assert!(xrdp.always_remote && !xrdp.believes_ssh_auth_info);
    assert_eq!(p.service("su").trusted, Some(vec![]));
    assert_eq!(p.service("nosuch"), &OTHER);
    assert_eq!(p.trusted_of("nosuch"), p.trusted.as_slice());
}

#[test]
fn a_reload_sees_the_new_values_and_the_old_config_keeps_its_own() {
    let old = Config::parse(
        "[remember]\nsession = \"8h\"\n[network]\ntrusted = [\"10.20.0.0/16\"]\n\
         [services.sudo]\nmethods = [\"totp\"]\n",
    )
    .unwrap();
    assert_eq!(old.session_trust_seconds(), 8 * 3600);
    assert!(old.trusted_network_of("sudo", "10.20.3.4").is_some());
    assert!(!old.service_accepts("sudo", "fido2"));
    assert!(!old.always_remote("web-terminal"));

    // SIGHUP: a whole new configuration from the edited file.
    let new = Config::parse(
        "[remember]\nsession = \"15m\"\n[network]\ntrusted = [\"192.0.2.0/24\"]\n\
         [services.sudo]\nmethods = [\"fido2\"]\n[services.web-terminal]\nalways_remote = true\n",
    )
    .unwrap();
    new.validate().unwrap();
    assert_eq!(new.session_trust_seconds(), 15 * 60);
    assert_eq!(new.trusted_network_of("sudo", "10.20.3.4"), None);
    assert!(new.trusted_network_of("sudo", "192.0.2.9").is_some());
    assert!(new.service_accepts("sudo", "fido2") && !new.service_accepts("sudo", "totp"));
    assert!(new.always_remote("web-terminal"));
    // Logins still running under the old one see what they started with.
    assert_eq!(old.session_trust_seconds(), 8 * 3600);
    assert!(old.trusted_network_of("sudo", "10.20.3.4").is_some());
}

#[test]
fn edits_before_first_use_and_edits_of_a_clone_are_seen() {
    // As herarxd's load_config does: load (validated), edit, validate again, then use.
    let mut config = Config::parse("[remember]\nsession = \"8h\"\n").unwrap();
    config.validate().unwrap();
    config.remember.session = "1h".into();
    config.login.no_factor = "ignore".into();
    config.validate().unwrap();
    assert_eq!(config.session_trust_seconds(), 3600);
    assert_eq!(config.no_factor_policy(), Some(NoFactorPolicy::Allow));

    // A clone of a used configuration starts empty, so its edits count.
    let mut edited = config.clone();
    assert!(!edited.parsed.is_filled());
    edited.remember.session = "2h".into();
    edited.network.trusted = vec!["10.0.0.0/8".into()];
    assert_eq!(edited.session_trust_seconds(), 7200);
    assert!(edited.trusted_network_of("sudo", "10.1.2.3").is_some());
    assert_eq!(config.session_trust_seconds(), 3600);
    assert_eq!(config.trusted_network_of("sudo", "10.1.2.3"), None);
}

#[test]
fn the_cache_is_no_part_of_equality_or_of_the_debug_output() {
    let used = Config::parse(VARIED[0]).unwrap();
    let unused = Config::parse(VARIED[0]).unwrap();
    let _ = used.trusted_networks("sshd");
    assert!(used.parsed.is_filled() && !unused.parsed.is_filled());
    assert_eq!(used, unused);
    assert_eq!(format!("{used:?}"), format!("{unused:?}"));
    assert_eq!(used.clone(), used);
    assert_ne!(used, Config::parse(VARIED[1]).unwrap());
    // Not a TOML key.
    let e = Config::parse("parsed = 1\n").unwrap_err();
    assert!(e.contains("unknown key parsed"), "{e}");
}
