//! The free-space reserve of the key store's disks (issue 10, item 11).
//!
//! sled cannot recover in-process from a failed write (its first I/O error poisons the
//! database), so the state machine must never reach a full disk. Each tick the key store
//! measures the free space of its directories (the Raft log, the state, the snapshots); below
//! the reserve it stops taking new data — proposals are refused with a clear reason (HTTP 507)
//! and new entries from the leader are not accepted — while it keeps answering what it
//! safely can (reads at an index it has applied, votes, heartbeats). Once space returns above
//! the reserve it resumes by itself and catches up from the leader. The reserve is what a
//! round in flight may still use. A write that fails for lack of space anyway (the reserve
//! was too small for a huge snapshot) still stops the process: that is the last resort.

use std::path::{Path, PathBuf};

/// One MiB.
const MIB: u64 = 1024 * 1024;

/// The directories to watch and the reserve below which new data is refused.
#[derive(Debug, Clone, Default)]
pub struct SpaceGuard {
    /// Free bytes to keep; 0 turns the guard off.
    pub reserve_bytes: u64,
    pub dirs: Vec<PathBuf>,
}

impl SpaceGuard {
    pub fn new(reserve_bytes: u64, dirs: Vec<PathBuf>) -> Self {
        SpaceGuard {
            reserve_bytes,
            dirs,
        }
    }

    /// Why new data must be refused now, if it must. A directory whose free space cannot be
    /// measured is not a reason (the writes themselves will tell).
    pub fn check(&self) -> Option<String> {
        if self.reserve_bytes == 0 {
            return None;
        }
        self.dirs
            .iter()
            .filter_map(|d| free_bytes(d).ok().map(|free| (d, free)))
            .find_map(|(d, free)| low(d, free, self.reserve_bytes))
    }
}

/// The reason to refuse when `dir` has `free` bytes and `reserve` must stay free.
pub fn low(dir: &Path, free: u64, reserve: u64) -> Option<String> {
    let name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    (free < reserve).then(|| {
        format!(
            "the disk of the {name} directory has {} MiB free, below the {} MiB reserve \
             ([limits] reserve_free_mb): writes are refused until space returns",
            free / MIB,
            reserve.div_ceil(MIB)
        )
    })
}

/// Bytes available to this (unprivileged) process on the filesystem of `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `st` points to writable memory of the
    // right type; statvfs fills it on success and we read it only then.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialised `st`.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::useless_conversion)] // the field widths differ between targets
    Ok(u64::from(st.f_bavail).saturating_mul(u64::from(st.f_frsize)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_the_reserve_is_a_reason_naming_the_directory() {
        let why = low(Path::new("/data/state"), 10 * MIB, 64 * MIB).expect("low");
        assert!(why.contains("state directory"), "{why}");
        assert!(
            why.contains("10 MiB free, below the 64 MiB reserve"),
            "{why}"
        );
        assert!(low(Path::new("/data/state"), 64 * MIB, 64 * MIB).is_none());
    }

    #[test]
    fn a_real_directory_is_measured() {
        let dir = tempfile::tempdir().expect("tempdir");
        let free = free_bytes(dir.path()).expect("statvfs");
        assert!(free > 0);
        // A reserve above what is free refuses; no reserve never does.
        let guard = SpaceGuard::new(u64::MAX, vec![dir.path().to_owned()]);
        assert!(guard.check().is_some());
        assert!(SpaceGuard::new(0, vec![dir.path().to_owned()])
            .check()
            .is_none());
        assert!(SpaceGuard::new(1, vec![dir.path().to_owned()])
            .check()
            .is_none());
    }
}
