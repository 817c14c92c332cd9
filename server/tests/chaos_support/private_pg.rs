//! A private PostgreSQL cluster for one test (`scripts/postgres.sh` with its own
//! `SIMRELAY_PG_DIR`), so the test can kill and restart it without touching the suite's
//! shared server. Stopped when dropped, also when the test fails.

use std::path::{Path, PathBuf};

/// Runs `scripts/postgres.sh cmd` on the private cluster in `dir`; its stdout.
fn pg_script(dir: &Path, cmd: &str) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .arg(cmd)
        .env("SIMRELAY_PG_DIR", dir)
        .output()
        .expect("postgres.sh runs");
    assert!(
        out.status.success(),
        "postgres.sh {cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

/// A private cluster in `dir` (under a temporary directory the caller keeps).
pub struct PrivatePg {
    pub dir: PathBuf,
}

impl PrivatePg {
    /// Makes and starts a cluster in `parent/pg`; returns it and its URL. `parent` is opened
    /// to other users: the cluster's owner (`postgres` when the tests run as root) must reach
    /// its directory.
    pub async fn start(parent: &Path) -> (Self, String) {
        #[cfg(unix)]
        std::fs::set_permissions(parent, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let pg = Self {
            dir: parent.join("pg"),
        };
        let url = pg.run("start").await;
        (pg, url)
    }

    /// `scripts/postgres.sh cmd` (`start`, `kill`, `stop`, ...) off the async runtime.
    pub async fn run(&self, cmd: &'static str) -> String {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || pg_script(&dir, cmd))
            .await
            .expect("postgres.sh thread")
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres.sh");
        let _ = std::process::Command::new("bash")
            .arg(script)
            .arg("stop")
            .env("SIMRELAY_PG_DIR", &self.dir)
            .output();
    }
}
