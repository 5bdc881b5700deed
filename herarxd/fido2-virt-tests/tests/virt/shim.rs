//! Adapted from ../shared/recipes/virtual-fido2: hidapi's open()/ioctl() are linker-wrapped
//! (-Wl,--wrap, see build.rs) so that a magic hidraw path yields one end of a datagram
//! socketpair; a responder thread per virtual key speaks CTAPHID framing and forwards CBOR to
//! `fido-authenticator` running on the trussed virtual platform. The rest of the stack —
//! ctap-hid-fido2, hidapi's hidraw C code, herarxd's backend — is the production code.
//!
//! Additions to the recipe: several keys (one platform and RNG stream each), and a "hold"
//! switch per key that makes it behave like a key waiting for a touch that never comes:
//! it answers CBOR requests only with CTAPHID_KEEPALIVE(UPNEEDED) until released.

use std::collections::HashSet;
use std::ffi::CStr;
use std::os::fd::IntoRawFd;
use std::os::raw::{c_char, c_int, c_uint, c_ulong, c_void};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use ctaphid_app::{App, Command};
use fido_authenticator::{Authenticator, Config, Conforming};
use heapless_bytes::Bytes;
use trussed::backend::BackendId;
use trussed::platform::Platform as _;
use trussed::virt::{self, StoreConfig};
use trussed_core::types::consent::Level;
use trussed_staging::virt::{BackendIds, Dispatcher};

pub const KEYS: usize = 2;
pub const PATHS: [&str; KEYS] = ["/fake/hidraw-fido0", "/fake/hidraw-fido1"];
const HIDIOCGRDESCSIZE: c_ulong = 0x8004_4801;

static CLIENT_FDS: [AtomicI32; KEYS] = [AtomicI32::new(-1), AtomicI32::new(-1)];
static FAKE_FDS: Mutex<Option<HashSet<c_int>>> = Mutex::new(None);
/// While set, key i waits for a touch that never comes.
pub static HOLD: [AtomicBool; KEYS] = [AtomicBool::new(false), AtomicBool::new(false)];
/// When set, key i answers its next CBOR request with these bytes (status byte + CBOR)
/// instead of asking the authenticator: a key sending malformed data.
pub static CANNED: [Mutex<Option<Vec<u8>>>; KEYS] = [Mutex::new(None), Mutex::new(None)];
/// How many CBOR requests key i has received (to know a held request arrived).
pub static REQUESTS: [AtomicU32; KEYS] = [AtomicU32::new(0), AtomicU32::new(0)];

unsafe extern "C" {
    fn __real_open(path: *const c_char, flags: c_int, ...) -> c_int;
    fn __real_ioctl(fd: c_int, req: c_ulong, ...) -> c_int;
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __wrap_open(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    let p = unsafe { CStr::from_ptr(path) };
    for (i, magic) in PATHS.iter().enumerate() {
        if p.to_bytes() == magic.as_bytes() {
            let fd = unsafe { libc::dup(CLIENT_FDS[i].load(Ordering::SeqCst)) };
            FAKE_FDS
                .lock()
                .unwrap()
                .get_or_insert_with(HashSet::new)
                .insert(fd);
            return fd;
        }
    }
    unsafe { __real_open(path, flags, mode) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __wrap_ioctl(fd: c_int, req: c_ulong, arg: *mut c_void) -> c_int {
    if req == HIDIOCGRDESCSIZE
        && FAKE_FDS
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|s| s.contains(&fd))
    {
        unsafe { *(arg as *mut c_int) = 34 };
        return 0;
    }
    unsafe { __real_ioctl(fd, req, arg) }
}

fn send(dev: &UnixDatagram, cid: &[u8], cmd: u8, payload: &[u8]) {
    let mut p = [0u8; 64];
    p[..4].copy_from_slice(cid);
    p[4] = cmd;
    p[5] = (payload.len() >> 8) as u8;
    p[6] = payload.len() as u8;
    let n = payload.len().min(57);
    p[7..7 + n].copy_from_slice(&payload[..n]);
    dev.send(&p).unwrap();
    let mut off = n;
    let mut seq = 0u8;
    while off < payload.len() {
        let mut c = [0u8; 64];
        c[..4].copy_from_slice(cid);
        c[4] = seq;
        let m = (payload.len() - off).min(59);
        c[5..5 + m].copy_from_slice(&payload[off..off + m]);
        dev.send(&c).unwrap();
        off += m;
        seq += 1;
    }
}

fn device_loop<A: App<'static>>(i: usize, dev: UnixDatagram, app: &mut A) {
    dev.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = [0u8; 128];
    loop {
        let n = match dev.recv(&mut buf) {
            Ok(n) => n,
            Err(_) => continue,
        };
        assert_eq!(n, 65, "hidraw write = report id + 64");
        let pkt = &buf[1..65];
        if pkt[4] & 0x80 == 0 {
            continue; // stray continuation
        }
        let cid = pkt[..4].to_vec();
        let cmd = pkt[4];
        let bcnt = ((pkt[5] as usize) << 8) | pkt[6] as usize;
        let mut data = pkt[7..7 + bcnt.min(57)].to_vec();
        while data.len() < bcnt {
            let n = loop {
                if let Ok(n) = dev.recv(&mut buf) {
                    break n;
                }
            };
            assert_eq!(n, 65);
            let need = (bcnt - data.len()).min(59);
            data.extend_from_slice(&buf[1 + 5..1 + 5 + need]);
        }
        match cmd {
            0x86 => {
                // INIT
                let mut r = data[..8].to_vec();
                r.extend_from_slice(&[0x11, 0x22, 0x33, 0x44, 2, 1, 0, 0, 0x05]);
                send(&dev, &cid, 0x86, &r);
            }
            0x90 | 0x83 => {
                // CBOR / MSG
                REQUESTS[i].fetch_add(1, Ordering::SeqCst);
                while HOLD[i].load(Ordering::SeqCst) {
                    send(&dev, &cid, 0xBB, &[2]); // KEEPALIVE, status UPNEEDED
                    std::thread::sleep(Duration::from_millis(100));
                }
                if let Some(canned) = CANNED[i].lock().unwrap().take() {
                    send(&dev, &cid, cmd, &canned);
                    continue;
                }
                let mut out: Bytes<7609> = Bytes::new();
                let c = if cmd == 0x90 {
                    Command::Cbor
                } else {
                    Command::Msg
                };
                app.call(c, &data, out.as_mut_view()).unwrap();
                send(&dev, &cid, cmd, &out);
            }
            0x88 => send(&dev, &cid, 0x88, &[]),
            _ => {}
        }
    }
}

fn spawn_key(i: usize) {
    let (client, dev) = UnixDatagram::pair().unwrap();
    CLIENT_FDS[i].store(client.into_raw_fd(), Ordering::SeqCst);
    std::thread::Builder::new()
        .name(format!("virtual-key-{i}"))
        .spawn(move || {
            virt::with_platform(StoreConfig::ram(), |mut platform| {
                // The virtual platform seeds every RNG alike: give each key its own stream,
                // or two keys would share their credential-wrapping key.
                platform.rng().set_stream(i as u64 + 1);
                platform
                    .user_interface()
                    .set_user_presence_level(Level::Normal);
                platform.run_client_with_backends(
                    "fido",
                    Dispatcher::default(),
                    &[
                        BackendId::Custom(BackendIds::StagingBackend),
                        BackendId::Core,
                    ],
                    |client| {
                        let mut cfg = Config::new(7609);
                        cfg.fido2_up_timeout = Some(100);
                        let mut auth = Authenticator::new(client, Conforming {}, cfg);
                        device_loop(i, dev, &mut auth);
                    },
                )
            })
        })
        .unwrap();
}

/// Starts the virtual keys once per test process (they run until the process exits).
pub fn start() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| (0..KEYS).for_each(spawn_key));
}
