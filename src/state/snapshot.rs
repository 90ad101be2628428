//! TEMPORARY stub: replaced by the snapshot file implementation (branch wip-snapshot).
#![allow(dead_code, unused_variables)]
use std::path::{Path, PathBuf};

use raft::eraftpb::SnapshotMetadata;
use serde::{Deserialize, Serialize};

use super::{StateError, StateMachine};

pub const MAX_CHUNK_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt snapshot: {0}")]
    Corrupt(String),
    #[error(transparent)]
    State(#[from] StateError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotDescriptor {
    pub index: u64,
    pub term: u64,
    pub size: u64,
    pub sha256: [u8; 32],
}

impl SnapshotDescriptor {
    pub fn encode(&self) -> Vec<u8> {
        Vec::new()
    }
    pub fn decode(bytes: &[u8]) -> Result<Self, SnapshotError> {
        Err(SnapshotError::Corrupt("stub".into()))
    }
}

pub fn snapshot_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("snap-{index}.bin"))
}

pub fn write_snapshot(
    state: &StateMachine,
    dir: &Path,
    meta: &SnapshotMetadata,
) -> Result<SnapshotDescriptor, SnapshotError> {
    Err(SnapshotError::Corrupt("stub".into()))
}

pub fn read_meta(path: &Path) -> Result<SnapshotMetadata, SnapshotError> {
    Err(SnapshotError::Corrupt("stub".into()))
}

pub fn read_chunk(
    dir: &Path,
    index: u64,
    offset: u64,
    max_len: usize,
) -> Result<Vec<u8>, SnapshotError> {
    Err(SnapshotError::Corrupt("stub".into()))
}

pub struct SnapshotReceiver;

impl SnapshotReceiver {
    pub fn new(dir: &Path, desc: &SnapshotDescriptor) -> Result<Self, SnapshotError> {
        Err(SnapshotError::Corrupt("stub".into()))
    }
    pub fn write_chunk(&mut self, offset: u64, data: &[u8]) -> Result<(), SnapshotError> {
        Err(SnapshotError::Corrupt("stub".into()))
    }
    pub fn finish(self) -> Result<PathBuf, SnapshotError> {
        Err(SnapshotError::Corrupt("stub".into()))
    }
}

impl StateMachine {
    pub fn restore_snapshot(&self, dir: &Path, index: u64) -> Result<(), SnapshotError> {
        Err(SnapshotError::Corrupt("stub".into()))
    }
    pub fn resume_interrupted_restore(&self, dir: &Path) -> Result<Option<u64>, SnapshotError> {
        Ok(None)
    }
}
pub fn describe(path: &Path) -> Result<SnapshotDescriptor, SnapshotError> {
    Err(SnapshotError::Corrupt("stub".into()))
}
