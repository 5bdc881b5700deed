//! The 256-bit master key that seals every secret in the store.
//!
//! Taken from the systemd credential `herarx-store-key` when the service manager passes one,
//! else from a root-only key file that the first start creates. A key file that group or others
//! could read is refused: the store is only as safe as this file.

use std::fmt;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Name of the systemd credential that holds the key.
pub const CREDENTIAL_NAME: &str = "herarx-store-key";

pub const KEY_LEN: usize = 32;

/// The master key. Wiped from memory when dropped; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; KEY_LEN]);

impl MasterKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        MasterKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// Where the key came from, for the startup log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Credential(PathBuf),
    ExistingFile(PathBuf),
    CreatedFile(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Credential(p) => write!(f, "systemd credential {}", p.display()),
            KeySource::ExistingFile(p) => write!(f, "key file {}", p.display()),
            KeySource::CreatedFile(p) => write!(f, "new key file {}", p.display()),
        }
    }
}

/// Why no key could be had. The message says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(pub String);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

/// Loads the master key: the credential in `credentials_dir` when it holds one, else
/// `key_file`, which is created (0600, in a 0700 directory if that is missing) when absent.
pub fn load_master_key(
    credentials_dir: Option<&Path>,
    key_file: &Path,
) -> Result<(MasterKey, KeySource), KeyError> {
    if let Some(dir) = credentials_dir {
        let path = dir.join(CREDENTIAL_NAME);
        match read_limited(&path) {
            Ok((bytes, _)) => {
                let key = parse_key(&bytes).map_err(|why| {
                    KeyError(format!(
                        "the systemd credential {} {why}; provision it again \
                         (see herarxd(8), \"master key\")",
                        path.display()
                    ))
                })?;
                return Ok((key, KeySource::Credential(path)));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                return Err(KeyError(format!(
                    "cannot read the systemd credential {}: {e}",
                    path.display()
                )));
            }
        }
    }
    match read_key_file(key_file) {
        Ok(key) => Ok((key, KeySource::ExistingFile(key_file.to_owned()))),
        Err(ReadError::Missing) => {
            create_key_file(key_file)?;
            // Read it back through the same checks, so that a concurrent creator wins cleanly.
            match read_key_file(key_file) {
                Ok(key) => Ok((key, KeySource::CreatedFile(key_file.to_owned()))),
                Err(ReadError::Missing) => Err(KeyError(format!(
                    "the key file {} vanished right after it was created; check what else \
                     manages that directory",
                    key_file.display()
                ))),
                Err(ReadError::Refused(e)) => Err(e),
            }
        }
        Err(ReadError::Refused(e)) => Err(e),
    }
}

enum ReadError {
    Missing,
    Refused(KeyError),
}

fn read_key_file(path: &Path) -> Result<MasterKey, ReadError> {
    let (bytes, meta) = match read_limited(path) {
        Ok(x) => x,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(ReadError::Missing),
        Err(e) => {
            return Err(ReadError::Refused(KeyError(format!(
                "cannot read the key file {}: {e}",
                path.display()
            ))));
        }
    };
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(ReadError::Refused(KeyError(format!(
            "key file {p} is readable by group or others (mode {mode:04o}); \
             run `chmod 600 {p}` and restart herarxd",
            p = path.display()
        ))));
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(ReadError::Refused(KeyError(format!(
            "key file {p} belongs to uid {} but herarxd runs as uid {euid}; \
             run `chown {euid} {p}` and restart herarxd",
            meta.uid(),
            p = path.display()
        ))));
    }
    if !meta.is_file() {
        return Err(ReadError::Refused(KeyError(format!(
            "key file {} is not a regular file; point store.key_file at the key file",
            path.display()
        ))));
    }
    parse_key(&bytes).map_err(|why| {
        ReadError::Refused(KeyError(format!(
            "key file {p} {why}. Restore it from your backup; if the store is new and \
             empty, delete {p} and restart herarxd to create a new key",
            p = path.display()
        )))
    })
}

/// Reads at most a little more than a hex key, so a wrong path cannot make us read a huge file.
fn read_limited(path: &Path) -> std::io::Result<(Zeroizing<Vec<u8>>, std::fs::Metadata)> {
    let file = File::open(path)?;
    // The checks apply to the file we opened, not to whatever the path names later.
    let meta = file.metadata()?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(2 * KEY_LEN + 2));
    file.take(4 * KEY_LEN as u64).read_to_end(&mut bytes)?;
    Ok((bytes, meta))
}

/// Accepts 32 raw bytes, or 64 hex digits with an optional trailing newline.
fn parse_key(bytes: &[u8]) -> Result<MasterKey, String> {
    if bytes.len() == KEY_LEN {
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(bytes);
        let k = MasterKey(key);
        key.zeroize();
        return Ok(k);
    }
    let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    if text.len() == 2 * KEY_LEN {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        let decoded = data_encoding::HEXLOWER_PERMISSIVE.decode_mut(text, &mut key[..]);
        if decoded.is_ok() {
            return Ok(MasterKey(*key));
        }
        return Err("holds 64 characters that are not all hex digits".into());
    }
    Err(format!(
        "holds {} bytes: it must hold 32 raw bytes or 64 hex digits",
        bytes.len()
    ))
}

fn create_key_file(path: &Path) -> Result<(), KeyError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                KeyError(format!(
                    "cannot create the directory {} for the key file: {e}",
                    dir.display()
                ))
            })?;
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    getrandom::fill(&mut key[..]).map_err(|e| {
        KeyError(format!(
            "cannot get random bytes from the kernel for a new key: {e}"
        ))
    })?;
    // create_new + mode: the file never exists with wider permissions, and two daemons
    // starting at once cannot both write a key.
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => {
            return Err(KeyError(format!(
                "cannot create the key file {}: {e}; check that the directory exists and is \
                 writable by root, or set store.key_file",
                path.display()
            )));
        }
    };
    // Losing the key loses every enrolment: make it durable before anything is sealed with it.
    file.write_all(&key[..])
        .and_then(|()| file.sync_all())
        .map_err(|e| {
            KeyError(format!(
                "cannot write the key file {}: {e}; delete it and restart herarxd",
                path.display()
            ))
        })?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode_of(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn first_start_creates_a_private_key_file_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let path = state.join("store.key");
        let (k1, src) = load_master_key(None, &path).unwrap();
        assert_eq!(src, KeySource::CreatedFile(path.clone()));
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(mode_of(&state), 0o700);
        assert_eq!(std::fs::read(&path).unwrap(), k1.as_bytes());

        let (k2, src) = load_master_key(None, &path).unwrap();
        assert_eq!(src, KeySource::ExistingFile(path.clone()));
        assert_eq!(k1.as_bytes(), k2.as_bytes());
    }

    #[test]
    fn a_key_file_readable_by_others_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.key");
        load_master_key(None, &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_master_key(None, &path).unwrap_err().to_string();
        let p = path.display();
        assert_eq!(
            e,
            format!(
                "key file {p} is readable by group or others (mode 0644); run `chmod 600 {p}` and restart herarxd"
            )
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(load_master_key(None, &path).is_err());
    }

    #[test]
    fn a_key_file_of_the_wrong_length_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.key");
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        f.write_all(&[7u8; 31]).unwrap();
        let e = load_master_key(None, &path).unwrap_err().to_string();
        assert!(e.contains("holds 31 bytes"), "{e}");
        assert!(e.contains("32 raw bytes or 64 hex digits"), "{e}");
    }

    #[test]
    fn a_hex_key_file_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.key");
        let hex = format!("{}\n", "ab".repeat(32));
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        f.write_all(hex.as_bytes()).unwrap();
        let (k, _) = load_master_key(None, &path).unwrap();
        assert_eq!(k.as_bytes(), &[0xab; 32]);
    }

    #[test]
    fn the_systemd_credential_wins_over_the_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("creds");
        std::fs::create_dir(&creds).unwrap();
        std::fs::write(creds.join(CREDENTIAL_NAME), [5u8; 32]).unwrap();
        let path = dir.path().join("store.key");
        let (k, src) = load_master_key(Some(&creds), &path).unwrap();
        assert_eq!(k.as_bytes(), &[5u8; 32]);
        assert!(matches!(src, KeySource::Credential(_)));
        assert!(
            !path.exists(),
            "no key file is created when the credential is used"
        );

        std::fs::write(
            creds.join(CREDENTIAL_NAME),
            format!("{}\n", "0F".repeat(32)),
        )
        .unwrap();
        let (k, _) = load_master_key(Some(&creds), &path).unwrap();
        assert_eq!(k.as_bytes(), &[0x0f; 32]);

        std::fs::write(creds.join(CREDENTIAL_NAME), "too short").unwrap();
        let e = load_master_key(Some(&creds), &path)
            .unwrap_err()
            .to_string();
        assert!(e.contains(CREDENTIAL_NAME), "{e}");
    }

    #[test]
    fn a_credentials_directory_without_our_credential_falls_back_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("creds");
        std::fs::create_dir(&creds).unwrap();
        let path = dir.path().join("store.key");
        let (_, src) = load_master_key(Some(&creds), &path).unwrap();
        assert_eq!(src, KeySource::CreatedFile(path));
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let k = MasterKey::from_bytes([0x41; 32]);
        assert_eq!(format!("{k:?}"), "MasterKey(..)");
    }
}
