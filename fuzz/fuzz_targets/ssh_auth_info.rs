//! `SSH_AUTH_INFO_0` as sshd (or a module before Herarx) puts it in the PAM environment.
//!
//! Beyond "does not crash": every key found comes from a `publickey` line and carries a
//! well-formed `SHA256:` fingerprint; and a key line made from the input's own words (a type
//! and a body, wrapped as sshd writes them) is found, with the fingerprint `ssh-keygen -l`
//! would print.
#![no_main]

use data_encoding::{BASE64, BASE64_NOPAD};
use herarxd::login::ssh_info::{SK_TYPES, passed_keys};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let info = String::from_utf8_lossy(data);
    let keys = passed_keys(&info);
    let key_lines = info
        .lines()
        .filter(|l| l.split_whitespace().next() == Some("publickey"))
        .count();
    assert!(keys.len() <= key_lines, "more keys than publickey lines");
    for key in &keys {
        let b64 = key
            .fingerprint
            .strip_prefix("SHA256:")
            .expect("fingerprint without SHA256: prefix");
        assert_eq!(BASE64_NOPAD.decode(b64.as_bytes()).map(|d| d.len()), Ok(32));
        assert!(!key.key_type.is_empty() && !key.key_type.contains(char::is_whitespace));
        assert_eq!(
            key.is_security_key(),
            SK_TYPES.contains(&key.key_type.as_str())
        );
    }

    // A well-formed line from the input: its first word as the type, the rest as key bytes.
    let (key_type, body) = match info.split_once(char::is_whitespace) {
        Some((t, b)) => (t, b.as_bytes()),
        None => (info.as_ref(), &[][..]),
    };
    if key_type.is_empty() || key_type.contains(char::is_whitespace) {
        return;
    }
    let mut blob = (key_type.len() as u32).to_be_bytes().to_vec();
    blob.extend_from_slice(key_type.as_bytes());
    blob.extend_from_slice(body);
    let line = format!("password\npublickey {key_type} {}\n", BASE64.encode(&blob));
    let found = passed_keys(&line);
    let want = format!("SHA256:{}", BASE64_NOPAD.encode(&Sha256::digest(&blob)));
    assert_eq!(found.len(), 1, "{line:?}");
    assert_eq!(found[0].key_type, key_type);
    assert_eq!(found[0].fingerprint, want);
});
