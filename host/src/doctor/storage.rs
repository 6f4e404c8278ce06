//! Can the server keep what it accepts: the data directory (queue, sent records, token
//! secret) is writable and has room, or the shared Redis answers.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::Check;
use crate::config::{Config, StoreKind};

/// Less free space than this fails the check: the queue could not take a burst of receipts.
const FULL: u64 = 64 << 20;
/// Less than this is worth a warning.
const LOW: u64 = 1 << 30;

pub async fn check(config: &Config) -> Vec<Check> {
    match config.delivery.store {
        StoreKind::Redis => vec![redis(config).await],
        StoreKind::Embedded => vec![data_dir(&config.delivery.data_dir)],
    }
}

async fn redis(config: &Config) -> Check {
    const KEY: &str = "delivery.redis_url";
    let url = config
        .delivery
        .redis_url
        .as_deref()
        .map(delivery_store::shared::without_password)
        .unwrap_or_default();
    match config.delivery.open_store().await {
        Ok(_) => Check::ok(KEY, format!("{url}: answers")),
        Err(e) => Check::failed(
            KEY,
            format!("{e:#}"),
            "start Redis, or fix the URL (redis://[:PASSWORD@]HOST:PORT/DB)",
        ),
    }
}

fn data_dir(dir: &Path) -> Check {
    const KEY: &str = "delivery.data_dir";
    let shown = dir.display();
    let probe = dir.join(".doctor-write-test");
    let writable = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b"ok"))
        .and_then(|()| std::fs::remove_file(&probe));
    if let Err(e) = writable {
        return Check::failed(
            KEY,
            format!("{shown}: not writable: {e}"),
            "give the server's user write access, or mount a writable volume there",
        );
    }
    match free_bytes(dir) {
        Some(free) if free < FULL => Check::failed(
            KEY,
            format!("{shown}: writable, {} free", size(free)),
            "free space on that file system: accepted receipts would be refused",
        ),
        Some(free) if free < LOW => Check::warning(
            KEY,
            format!("{shown}: writable, {} free", size(free)),
            "keep at least 1 GiB free for the queue",
        ),
        Some(free) => Check::ok(KEY, format!("{shown}: writable, {} free", size(free))),
        None => Check::ok(KEY, format!("{shown}: writable")),
    }
}

fn free_bytes(dir: &Path) -> Option<u64> {
    let path = CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string and `stat` a buffer statvfs fills on success.
    let result = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if result != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled `stat`.
    let stat = unsafe { stat.assume_init() };
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
    } else {
        format!("{} MiB", bytes >> 20)
    }
}
