//! Shared pieces of the fuzz targets: how one fuzz input is cut into several fields, and the
//! fixed relying party and challenge the FIDO2 targets (and their seeds) use.
//!
//! A target that needs several values reads them from one input as length-prefixed fields
//! ([`Fields`]), so that a seed can hold a real value in each (see `examples/make_seeds.rs`),
//! and a mutation of one field leaves the others in place.

/// `herarxctl`'s otpauth reader. herarxctl is a binary crate with no library, so its module is
/// compiled here from the same file (it depends on nothing else of herarxctl).
#[path = "../../herarxctl/src/otpauth.rs"]
#[allow(dead_code)]
pub mod ctl_otpauth;

/// The relying party of the FIDO2 targets (the shape herarxd's `fido2.rp_id` takes).
pub const RP_ID: &str = "pam://fuzz.example";
/// The challenge the FIDO2 targets verify against: fixed, so that a seed can sign it.
pub const CHALLENGE: [u8; 32] = *b"herarx-fuzz-challenge-0123456789";

/// Fields of one input: each is a little-endian u16 length and that many bytes. A field cut
/// short by the end of the input is what is left of it; fields past the end are empty.
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }

    /// The next field's bytes.
    pub fn bytes(&mut self) -> &'a [u8] {
        let (len, body) = match self.rest {
            [a, b, body @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), body),
            _ => (0, &[][..]),
        };
        let (field, rest) = body.split_at(len.min(body.len()));
        self.rest = rest;
        field
    }

    /// The next field as text (invalid UTF-8 replaced).
    pub fn text(&mut self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }

    /// The next field's first byte (0 when empty).
    pub fn byte(&mut self) -> u8 {
        self.bytes().first().copied().unwrap_or(0)
    }

    /// The next field as a little-endian u64 (missing bytes are 0).
    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for (d, s) in b.iter_mut().zip(self.bytes()) {
            *d = *s;
        }
        u64::from_le_bytes(b)
    }
}

/// Encodes `fields` the way [`Fields`] reads them (for the seeds).
pub fn encode_fields(fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        let len = u16::try_from(f.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&f[..usize::from(len)]);
    }
    out
}
