#!/usr/bin/env python3
"""Writes the seed corpus, fuzz/seeds/<target>/, from real values: the shipped herarx.toml,
SSH_AUTH_INFO_0 lines as sshd writes them, otpauth URIs as herarxd writes them, and FIDO2
registrations and assertions signed with fixed keys (P-256 and Ed25519) over the fuzz
targets' fixed relying party and challenge (fuzz/src/lib.rs), built the way the unit tests'
scripted authenticator (herarxd/src/fido2/tests.rs) builds them.

Deterministic (fixed keys, RFC 6979 ECDSA): running it again rewrites the same files.
Needs python3 and its `cryptography` package (Debian: python3-cryptography).
    python3 fuzz/make_seeds.py
"""
import base64
import hashlib
import os
import shutil
import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "seeds")
ROOT = os.path.dirname(HERE)

# As in fuzz/src/lib.rs.
RP_ID = b"pam://fuzz.example"
CHALLENGE = b"herarx-fuzz-challenge-0123456789"
assert len(CHALLENGE) == 32

FLAG_UP, FLAG_UV, FLAG_AT, FLAG_ED = 0x01, 0x04, 0x40, 0x80


def fields(*parts):
    """What herarx_fuzz::Fields reads: each part as a u16 LE length and its bytes."""
    out = b""
    for p in parts:
        if isinstance(p, str):
            p = p.encode()
        out += struct.pack("<H", len(p)) + p
    return out


def u64(n):
    return struct.pack("<Q", n & 0xFFFFFFFFFFFFFFFF)


# --- minimal CBOR (definite lengths, what authenticators send) ---------------------------
def cbor_head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for info, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if n < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | info]) + struct.pack(fmt, n)
    raise ValueError(n)


def cbor(v):
    if isinstance(v, bool):
        return b"\xf5" if v else b"\xf4"
    if isinstance(v, int):
        return cbor_head(0, v) if v >= 0 else cbor_head(1, -1 - v)
    if isinstance(v, bytes):
        return cbor_head(2, len(v)) + v
    if isinstance(v, str):
        b = v.encode()
        return cbor_head(3, len(b)) + b
    if isinstance(v, list):
        return cbor_head(4, len(v)) + b"".join(cbor(x) for x in v)
    if isinstance(v, dict):
        return cbor_head(5, len(v)) + b"".join(cbor(k) + cbor(x) for k, x in v.items())
    raise TypeError(v)


# --- fixed keys ---------------------------------------------------------------------------
P256 = ec.derive_private_key(0x5EED_0001_C0DE_F1D0_2A11_77E5_7000_0000_0000_0000_0000_0000_0000_0000_0001, ec.SECP256R1())
ED = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def p256_cose():
    n = P256.public_key().public_numbers()
    return cbor({1: 2, 3: -7, -1: 1, -2: n.x.to_bytes(32, "big"), -3: n.y.to_bytes(32, "big")})


def ed_cose(alg=-8):
    raw = ED.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return cbor({1: 1, 3: alg, -1: 6, -2: raw})


def sign(key, msg):
    if key is ED:
        return ED.sign(msg)
    return P256.sign(msg, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))


def signed_message(auth_data):
    return auth_data + hashlib.sha256(CHALLENGE).digest()


def auth_data(flags, counter, cred_id=None, cose=None, ext=None, rp=RP_ID):
    out = hashlib.sha256(rp).digest() + bytes([flags]) + struct.pack(">I", counter)
    if cred_id is not None:
        out += bytes(range(16)) + struct.pack(">H", len(cred_id)) + cred_id + cose
    if ext is not None:
        out += ext
    return out


def write(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def ssh_blob(key_type, *parts):
    def s(b):
        return struct.pack(">I", len(b)) + b
    return s(key_type.encode()) + b"".join(s(p) for p in parts)


def main():
    shutil.rmtree(SEEDS, ignore_errors=True)

    # SSH_AUTH_INFO_0, as OpenSSH writes it (the ed25519 key of herarxd/src/ssh_info.rs's test).
    ed_line = "publickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL7lCB1bOIyEndk5TaU+9cHjtEZrwHZCDLOeSmV1fZuX"
    sk = base64.b64encode(ssh_blob("sk-ssh-ed25519@openssh.com", bytes(range(32)), b"ssh:")).decode()
    n = P256.public_key().public_numbers()
    point = b"\x04" + n.x.to_bytes(32, "big") + n.y.to_bytes(32, "big")
    ecdsa = base64.b64encode(ssh_blob("ecdsa-sha2-nistp256", b"nistp256", point)).decode()
    sk_ecdsa = base64.b64encode(ssh_blob("sk-ecdsa-sha2-nistp256@openssh.com", b"nistp256", point, b"ssh:")).decode()
    write("ssh_auth_info", "ed25519", ed_line + "\n")
    write("ssh_auth_info", "password-then-key", "password\n" + ed_line + "\n")
    write("ssh_auth_info", "sk-ed25519", f"publickey sk-ssh-ed25519@openssh.com {sk}\n")
    write("ssh_auth_info", "two-keys", f"publickey ecdsa-sha2-nistp256 {ecdsa}\npublickey sk-ecdsa-sha2-nistp256@openssh.com {sk_ecdsa}\n")
    write("ssh_auth_info", "keyboard-interactive", "keyboard-interactive\n")

    # FIDO2: authenticator data and COSE keys.
    cred_p, cred_e = bytes(range(48)), bytes(range(100, 164))
    reg_p = auth_data(FLAG_UP | FLAG_AT, 0, cred_p, p256_cose())
    reg_e = auth_data(FLAG_UP | FLAG_UV | FLAG_AT, 7, cred_e, ed_cose())
    ext = cbor({"credProtect": 2})
    reg_ext = auth_data(FLAG_UP | FLAG_AT | FLAG_ED, 1, cred_p, p256_cose(), ext)
    asrt = auth_data(FLAG_UP, 6)
    asrt_uv = auth_data(FLAG_UP | FLAG_UV, 8)
    for name, ad in [("registration-es256", reg_p), ("registration-eddsa-uv", reg_e),
                     ("registration-extensions", reg_ext), ("assertion", asrt),
                     ("assertion-uv", asrt_uv), ("assertion-extensions", auth_data(FLAG_UP | FLAG_ED, 9, ext=ext))]:
        write("fido2_authdata", name, ad)
    write("fido2_cose_key", "es256", p256_cose())
    write("fido2_cose_key", "eddsa", ed_cose())
    write("fido2_cose_key", "ed25519-fully-specified", ed_cose(-19))
    write("fido2_cose_key", "rs256-refused", cbor({1: 3, 3: -257, -1: b"\x01" * 64, -2: b"\x01\x00\x01"}))

    # Registrations: mode byte (bits 0-1 format, 2 UV required, 3 alg present), authData,
    # alg, sig, x5c, fmt.
    write("fido2_registration", "none-es256", fields(b"\x00", reg_p, b"", b"", b""))
    write("fido2_registration", "packed-self-es256",
          fields(b"\x09", reg_p, u64(-7), sign(P256, signed_message(reg_p)), b""))
    write("fido2_registration", "packed-self-eddsa-uv",
          fields(b"\x0d", reg_e, u64(-8), sign(ED, signed_message(reg_e)), b""))
    write("fido2_registration", "packed-x5c",
          fields(b"\x09", reg_ext, u64(-7), sign(P256, signed_message(reg_ext)), b"0\x82\x01\x00not a real cert"))
    write("fido2_registration", "fido-u2f-refused", fields(b"\x02", reg_p, b"", b"sig", b"cert"))
    write("fido2_registration", "tpm-refused", fields(b"\x03", reg_p, b"", b"", b"", "tpm"))

    # Assertions: mode (bit 0 UV required), stored COSE key, stored counter, authData,
    # signature, credential id.
    write("fido2_assertion", "es256",
          fields(b"\x00", p256_cose(), u64(5), asrt, sign(P256, signed_message(asrt)), cred_p))
    write("fido2_assertion", "eddsa-uv",
          fields(b"\x01", ed_cose(), u64(7), asrt_uv, sign(ED, signed_message(asrt_uv)), cred_e))
    zero = auth_data(FLAG_UP, 0)
    write("fido2_assertion", "eddsa-no-counter",
          fields(b"\x00", ed_cose(), u64(0), zero, sign(ED, signed_message(zero)), cred_e))

    # Configuration: the shipped file, the smallest, and a few sections filled in.
    with open(os.path.join(ROOT, "packaging", "herarx.toml"), "rb") as f:
        write("config", "packaging-herarx.toml", f.read())
    write("config", "minimal.toml", "version = 1\n")
    write("config", "services.toml", """version = 1
[login]
no_factor = "allow"
allow_until = "2027-01-31"
[network]
trusted = ["10.20.0.0/16", "192.0.2.7", "2001:db8::/32"]
[services.sshd]
trusted_networks = []
methods = ["totp", "backup-code", "email"]
always_remote = true
[remember]
session = "8h"
addresses = "opt-in"
ssh_keys = "1d 12h"
""")
    write("config", "messaging.toml", """version = 1
[email]
transport = "smtp"
from = "herarx@example.com"
smtp_host = "127.0.0.1"
smtp_port = 25
smtp_security = "none"
[sms]
gateway = "webhook"
webhook_url = "https://sms.example.com/send"
[alerts]
admin_email = "root@example.com"
""")
    write("config", "wrong-types.toml", "version = \"1\"\n[totp]\ndigits = 9\nperiod = -1\n[login]\nno_factr = \"deny\"\n")

    # otpauth: a URI for herarxctl's reader, then issuer, user, host, secret, mode, period.
    for name, uri in [
        ("herarxd", "otpauth://totp/Herarx:alice@web1?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Herarx&algorithm=SHA1&digits=6&period=30"),
        ("encoded", "otpauth://totp/Herarx%20Lab:alice%40db1?secret=jbswy3dp%3D%3D&issuer=Herarx%20Lab&algorithm=sha256&digits=8&period=60"),
        ("google", "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example"),
        ("hotp", "otpauth://hotp/alice?secret=JBSWY3DP&counter=1"),
    ]:
        write("otpauth", name, fields(uri, "Herarx", "alice", "web1", b"12345678901234567890", b"\x00", u64(30)))
    write("otpauth", "labels", fields("OTPAUTH://TOTP/x?SECRET=ab", "ACME Corp & Co", "j.doe", "",
                                      bytes(range(32)), b"\x04", u64(60)))

    # Contacts: what a user types, then a text the address may appear in.
    for name, typed in [("email", " Jane.Doe+2fa@Example.COM "), ("email-bad", "Jane <jane@example.com>"),
                        ("phone", "+44 (20) 7946-0958"), ("phone-trunk", "+44 (0)20 7946 0958"),
                        ("phone-00", "0044 20 7946 0958")]:
        write("contact", name, fields(typed, "delivery to JANE.DOE+2FA@example.com failed: 550"))

    # Answers: the answer, then secret, mode, period, time, skew.
    rfc = b"12345678901234567890"
    for name, answer in [("totp", "287 082"), ("totp-8", "94287082"), ("backup", "ABCD-EFGH"),
                         ("backup-spaced", "2345 6789"), ("sent", "123-456"), ("menu", "?"), ("empty", "")]:
        write("answers", name, fields(answer, rfc, b"\x00", u64(15), u64(59), b"\x01"))

    # Module arguments, one a line.
    write("pam_args", "all", "bus=unix:path=/run/dbus/system_bus_socket\ntimeout=5\nfailmode=closed\ndebug\n")
    write("pam_args", "open-then-closed", "failmode=open\nfailmode=closed\n")
    write("pam_args", "bad", "timeout=0\ntimeout=99999999999999999999\nfailmode=ajar\nbus=\nnullok\n")


if __name__ == "__main__":
    main()
