//! Catches what the daemon sends to syslog: a unix datagram socket given to `herarxd
//! --log-socket`, read by a thread into memory, so tests can assert what was (and was not)
//! logged. There is no syslog daemon on these machines.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub struct LogCapture {
    pub path: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl LogCapture {
    pub fn start(path: PathBuf) -> LogCapture {
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).expect("bind log socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("log socket timeout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (lines.clone(), stop.clone());
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; 8192];
            while !s.load(Ordering::SeqCst) {
                if let Ok(n) = socket.recv(&mut buf) {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    l.lock().unwrap_or_else(|e| e.into_inner()).push(text);
                }
            }
        });
        LogCapture {
            path,
            lines,
            stop,
            reader: Some(reader),
        }
    }

    pub fn lines(&self) -> Vec<String> {
        // Give in-flight datagrams a moment to arrive.
        std::thread::sleep(Duration::from_millis(100));
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits (up to 5 s) for a line containing `needle`; panics with every line if none comes.
    pub fn wait_for(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(l) = lines.iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no log line with {needle:?} in:\n{}",
                lines.join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}
