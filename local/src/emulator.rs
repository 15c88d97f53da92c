//! The moto server as a child process: `local/moto_server.py`, single-threaded, on 127.0.0.1 and a
//! port the OS picks. It exits with its parent, and is killed when this handle drops.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Emulator {
    child: Child,
    pub port: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("could not start {python}: {source} (run `local/bootstrap.sh` first, or set PATCHBAY_PYTHON)")]
    Spawn {
        python: String,
        #[source]
        source: std::io::Error,
    },
    #[error("moto did not come up: {0}")]
    NotReady(String),
}

/// The repository root (where `local/` and `infra/` are).
pub fn repo_root() -> PathBuf {
    std::env::var_os("PATCHBAY_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default())
}

/// The project's Python (the virtual environment `local/bootstrap.sh` makes).
pub fn python() -> PathBuf {
    std::env::var_os("PATCHBAY_PYTHON").map(PathBuf::from).unwrap_or_else(|| repo_root().join(".venv/bin/python"))
}

impl Emulator {
    pub fn start(port: u16) -> Result<Self, EmulatorError> {
        let python = python();
        let mut child = Command::new(&python)
            .arg(repo_root().join("local/moto_server.py"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--exit-with-parent"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| EmulatorError::Spawn { python: python.display().to_string(), source })?;
        let stdout = child.stdout.take().ok_or_else(|| EmulatorError::NotReady("no stdout".into()))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(Ok(line)) = lines.next() {
                if let Some(p) = line.strip_prefix("MOTO_READY ") {
                    let _ = tx.send(p.trim().parse::<u16>().ok());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(port)) => Ok(Self { child, port }),
            Ok(None) => Err(EmulatorError::NotReady("unreadable port".into())),
            Err(_) => {
                let _ = child.kill();
                Err(EmulatorError::NotReady("no MOTO_READY line within 60 s".into()))
            }
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
