use std::cell::RefCell;
use std::fs;
use std::path::Path;

use raft::eraftpb::SnapshotMetadata;

use super::*;
use crate::state::snapshot::{read_chunk, snapshot_path, write_snapshot};
use crate::state::test_util::Log;
use crate::state::Command;

/// A snapshot of a few hundred commands in `dir`.
fn snapshot_in(dir: &Path) -> SnapshotDescriptor {
    let mut log = Log::new();
    log.community("kms.example.org");
    for i in 0..300 {
        log.ok(Command::RevokeIdentity {
            kms_uri: "kms.example.org".into(),
            identity: format!("sip:user{i}@example.org"),
            at_unix: 1_700_000_000,
            reason: "lost".into(),
        });
    }
    let meta = SnapshotMetadata {
        index: log.next - 1,
        term: 2,
        ..SnapshotMetadata::default()
    };
    write_snapshot(&log.s, dir, &meta).unwrap()
}

fn run<F: Future>(f: F) -> F::Output {
    actix_rt::System::new().block_on(f)
}

const CHUNK: usize = 1000;

/// A chunk source over the sender's directory that records the offsets asked and fails the
/// requests `fail(n, offset)` says (n counts requests from 0).
struct Source<'a> {
    dir: &'a Path,
    index: u64,
    asked: RefCell<Vec<u64>>,
}

impl<'a> Source<'a> {
    fn new(dir: &'a Path, index: u64) -> Self {
        Self {
            dir,
            index,
            asked: RefCell::new(Vec::new()),
        }
    }

    fn get<'s>(
        &'s self,
        fail: impl Fn(usize, u64) -> bool + 's,
    ) -> impl FnMut(u64) -> std::future::Ready<Result<Vec<u8>, String>> + 's {
        move |offset| {
            let n = self.asked.borrow().len();
            self.asked.borrow_mut().push(offset);
            std::future::ready(if fail(n, offset) {
                Err(format!("injected failure at {offset}"))
            } else {
                read_chunk(self.dir, self.index, offset, CHUNK).map_err(|e| e.to_string())
            })
        }
    }
}

#[test]
fn a_failed_chunk_is_asked_again_at_its_offset_not_from_zero() {
    let from = tempfile::tempdir().unwrap();
    let to = tempfile::tempdir().unwrap();
    let desc = snapshot_in(from.path());
    assert!(desc.size > 5 * CHUNK as u64, "{} bytes", desc.size);
    let src = Source::new(from.path(), desc.index);
    let mut rx = SnapshotReceiver::new(to.path(), &desc).unwrap();
    // The third request (offset 2000) fails twice, then succeeds.
    run(pull(
        &mut rx,
        desc.size,
        Duration::ZERO,
        src.get(|n, _| n == 2 || n == 3),
    ))
    .unwrap();
    let asked = src.asked.borrow().clone();
    assert_eq!(&asked[..5], &[0, 1000, 2000, 2000, 2000]);
    assert_eq!(asked.iter().filter(|&&o| o == 0).count(), 1, "{asked:?}");
    let path = rx.finish().unwrap();
    assert_eq!(
        fs::read(path).unwrap(),
        fs::read(snapshot_path(from.path(), desc.index)).unwrap()
    );
}

#[test]
fn a_fetch_that_gave_up_resumes_where_it_stopped() {
    let from = tempfile::tempdir().unwrap();
    let to = tempfile::tempdir().unwrap();
    let desc = snapshot_in(from.path());
    let src = Source::new(from.path(), desc.index);
    // The sender goes away at offset 3000: every try fails, the fetch gives up.
    let mut rx = SnapshotReceiver::new(to.path(), &desc).unwrap();
    let res = run(pull(
        &mut rx,
        desc.size,
        Duration::ZERO,
        src.get(|_, offset| offset >= 3000),
    ));
    assert!(res.is_err());
    assert_eq!(
        src.asked.borrow().iter().filter(|&&o| o == 3000).count(),
        CHUNK_ATTEMPTS as usize
    );
    drop(rx);

    // The next fetch of the same snapshot continues at 3000.
    let again = Source::new(from.path(), desc.index);
    let mut rx = SnapshotReceiver::new(to.path(), &desc).unwrap();
    assert_eq!(rx.received(), 3000);
    run(pull(
        &mut rx,
        desc.size,
        Duration::ZERO,
        again.get(|_, _| false),
    ))
    .unwrap();
    assert_eq!(again.asked.borrow()[0], 3000);
    let path = rx.finish().unwrap();
    assert_eq!(
        fs::read(path).unwrap(),
        fs::read(snapshot_path(from.path(), desc.index)).unwrap()
    );

    // A partial receive of another descriptor is not resumed.
    let mut other = desc;
    other.sha256[0] ^= 1;
    let mut rx = SnapshotReceiver::new(to.path(), &other).unwrap();
    rx.write_chunk(0, &read_chunk(from.path(), desc.index, 0, CHUNK).unwrap())
        .unwrap();
    drop(rx);
    let rx = SnapshotReceiver::new(to.path(), &desc).unwrap();
    assert_eq!(rx.received(), 0);
}
