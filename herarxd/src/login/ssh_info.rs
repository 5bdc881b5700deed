//! `SSH_AUTH_INFO_0`: what sshd says the client already proved in this connection.
//!
//! OpenSSH (7.6 and later, `UsePAM yes`) puts into the PAM environment, before it runs the PAM
//! stack for keyboard-interactive, one line per authentication method that already succeeded:
//! `publickey ssh-ed25519 AAAAC3Nz...` for a key (the key type and the base64 public key blob),
//! `password`, `keyboard-interactive`, ... With `AuthenticationMethods publickey,keyboard-
//! interactive` the key line is there when Herarx asks for the code. sshd writes the variable
//! itself, so the client cannot choose its content; but any PAM module that runs before
//! Herarx in the same stack could change it (`pam_env` with `user_readenv=1` would let a user
//! do so), and other services have no such variable at all. So the daemon believes it only
//! from root callers and for the services named in `remember.ssh_services`, and the README
//! says to keep such modules after Herarx.

use sha2::{Digest, Sha256};

/// Key types whose private half lives in a FIDO security key (user presence at every use).
pub const SK_TYPES: &[&str] = &[
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
];

/// A public key that already passed, as sshd reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassedKey {
    pub key_type: String,
    /// `SHA256:<base64>` of the key blob, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
}

impl PassedKey {
    /// Whether the key lives in a FIDO security key.
    pub fn is_security_key(&self) -> bool {
        SK_TYPES.contains(&self.key_type.as_str())
    }
}

/// The keys in `info` that already passed. Lines that are not well-formed key lines (a blob
/// that is not base64, or whose own type string differs from the line's) are left out.
pub fn passed_keys(info: &str) -> Vec<PassedKey> {
    info.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if words.next()? != "publickey" {
                return None;
            }
            let key_type = words.next()?;
            let blob = data_encoding::BASE64
                .decode(words.next()?.as_bytes())
                .ok()?;
            // The blob starts with its own type as an SSH string (u32 length, bytes).
            let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
            let inner = blob.get(4..4usize.checked_add(len)?)?;
            if inner != key_type.as_bytes() {
                return None;
            }
            let digest = Sha256::digest(&blob);
            Some(PassedKey {
                key_type: key_type.to_owned(),
                fingerprint: format!("SHA256:{}", data_encoding::BASE64_NOPAD.encode(&digest)),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key blob of `key_type` with some key bytes.
    fn blob(key_type: &str, body: &[u8]) -> String {
        let mut b = (key_type.len() as u32).to_be_bytes().to_vec();
        b.extend_from_slice(key_type.as_bytes());
        b.extend_from_slice(body);
        data_encoding::BASE64.encode(&b)
    }

    #[test]
    fn key_lines_give_fingerprints_like_ssh_keygen() {
        // `ssh-keygen -lf` of this public key printed
        // `256 SHA256:bvmVq2EfF6eh2hsKvo4wy5s5nG+qOE+a/4YTqj417T0 x (ED25519)`.
        let key = "AAAAC3NzaC1lZDI1NTE5AAAAIL7lCB1bOIyEndk5TaU+9cHjtEZrwHZCDLOeSmV1fZuX";
        let info = format!("password\npublickey ssh-ed25519 {key}\n");
        let keys = passed_keys(&info);
        assert_eq!(
            keys,
            vec![PassedKey {
                key_type: "ssh-ed25519".into(),
                fingerprint: "SHA256:bvmVq2EfF6eh2hsKvo4wy5s5nG+qOE+a/4YTqj417T0".into(),
            }]
        );
        assert!(!keys[0].is_security_key());
    }

    #[test]
    fn security_key_types_are_recognised() {
        for t in [
            "sk-ssh-ed25519@openssh.com",
            "sk-ecdsa-sha2-nistp256@openssh.com",
        ] {
            let keys = passed_keys(&format!("publickey {t} {}", blob(t, b"k")));
            assert_eq!(keys.len(), 1, "{t}");
            assert!(keys[0].is_security_key(), "{t}");
        }
    }

    #[test]
    fn malformed_or_mismatched_lines_are_ignored() {
        let ed = blob("ssh-ed25519", b"k");
        for info in [
            "".to_owned(),
            "keyboard-interactive".to_owned(),
            "publickey".to_owned(),
            "publickey ssh-ed25519".to_owned(),
            "publickey ssh-ed25519 not-base64!".to_owned(),
            // The line claims a security key; the blob says otherwise.
            format!("publickey sk-ssh-ed25519@openssh.com {ed}"),
            format!("password {ed}"),
            "publickey ssh-ed25519 AAAA".to_owned(),
            "publickey ssh-ed25519 /////w==".to_owned(),
        ] {
            assert!(passed_keys(&info).is_empty(), "{info:?}");
        }
        let two = format!(
            "publickey ssh-ed25519 {ed}\npublickey ssh-rsa {}",
            blob("ssh-rsa", b"r")
        );
        assert_eq!(passed_keys(&two).len(), 2);
    }
}
