use std::fs;
use std::path::Path;

use protobuf::Message as _;
use raft::eraftpb::{ConfState, SnapshotMetadata};

use super::restore::set_marker;
use super::transfer::receive_path;
use super::*;
use crate::kms::community::Certificate;
use crate::kms::period::PeriodParams;
use crate::state::command::{Command, Envelope, COMMAND_VERSION};

pub(super) const KMS: &str = "kms.example.org";

pub(super) fn temp_state() -> StateMachine {
    StateMachine::open(sled::Config::new().temporary(true).open().unwrap()).unwrap()
}

fn env(request_id: u64, command: Command) -> Envelope {
    Envelope {
        version: COMMAND_VERSION,
        request_id,
        command,
    }
}

/// Applies a realistic log (`revocations` identities revoked) and returns the applied index.
pub(super) fn populate(s: &StateMachine, revocations: usize) -> u64 {
    let period = PeriodParams {
        period_s: 2_592_000,
        offset_s: 0,
    };
    let mut log = vec![
        env(
            1,
            Command::SetBarrierCheck {
                sealed: vec![7u8; 60],
            },
        ),
        env(
            2,
            Command::CreateCommunity {
                kms_uri: KMS.into(),
                period,
            },
        ),
        env(
            3,
            Command::AddCertificate {
                kms_uri: KMS.into(),
                certificate: Certificate {
                    serial: 1,
                    cert_uri: format!("{KMS}/cert/1"),
                    valid_from_unix: 1_700_000_000,
                    valid_to_unix: 1_800_000_000,
                    revoked: false,
                    pub_enc_key: vec![4u8; 257],
                    pub_auth_key: vec![4u8; 65],
                    sealed_master: vec![9u8; 140],
                },
            },
        ),
        // Refused (unknown community), still advances the index.
        env(
            4,
            Command::ReinstateIdentity {
                kms_uri: "nope".into(),
                identity: "sip:x".into(),
            },
        ),
    ];
    for i in 0..revocations {
        log.push(env(
            10 + i as u64,
            Command::RevokeIdentity {
                kms_uri: KMS.into(),
                identity: format!("sip:user{i}@example.org"),
                at_unix: 1_700_000_000 + i as u64,
                reason: "lost device".into(),
            },
        ));
    }
    log.push(env(
        5,
        Command::ReinstateIdentity {
            kms_uri: KMS.into(),
            identity: "sip:user0@example.org".into(),
        },
    ));
    let start = s.applied_index().unwrap();
    for (i, e) in log.iter().enumerate() {
        s.apply(start + i as u64 + 1, e).unwrap();
    }
    let last = start + log.len() as u64 + 1;
    s.apply_empty(last).unwrap();
    last
}

pub(super) fn meta(index: u64, term: u64) -> SnapshotMetadata {
    SnapshotMetadata {
        index,
        term,
        conf_state: Some(ConfState {
            voters: vec![1, 2, 3],
            learners: vec![4],
            ..ConfState::default()
        })
        .into(),
        ..SnapshotMetadata::default()
    }
}

/// A source state written as a snapshot in `dir`.
pub(super) fn source(dir: &Path, revocations: usize) -> (StateMachine, SnapshotDescriptor) {
    let s = temp_state();
    let index = populate(&s, revocations);
    let desc = write_snapshot(&s, dir, &meta(index, 3)).unwrap();
    (s, desc)
}

#[test]
fn write_then_restore_gives_an_equal_state() {
    let dir = tempfile::tempdir().unwrap();
    let (src, desc) = source(dir.path(), 20);
    let path = snapshot_path(dir.path(), desc.index);
    assert_eq!(fs::metadata(&path).unwrap().len(), desc.size);
    assert_eq!(read_meta(&path).unwrap(), meta(desc.index, 3));
    let v = verify_snapshot(&path).unwrap();
    assert_eq!((v.size, v.sha256), (desc.size, desc.sha256));

    // The target starts with a different state: all of it is replaced.
    let dst = temp_state();
    populate(&dst, 3);
    dst.db().insert(b"stray", b"default tree").unwrap();
    dst.restore_snapshot(dir.path(), desc.index).unwrap();
    assert_eq!(dst.digest().unwrap(), src.digest().unwrap());
    assert_eq!(dst.applied_index().unwrap(), desc.index);
    assert_eq!(dst.interrupted_restore().unwrap(), None);
    assert!(dst.db().get(b"stray").unwrap().is_none());

    // A snapshot of the restored state is byte-identical: the marker tree is not in it.
    let again = tempfile::tempdir().unwrap();
    let desc2 = write_snapshot(&dst, again.path(), &meta(desc.index, 3)).unwrap();
    assert_eq!(desc2, desc);
    assert_eq!(
        fs::read(snapshot_path(again.path(), desc.index)).unwrap(),
        fs::read(&path).unwrap()
    );
}

#[test]
fn thousands_of_records_round_trip_in_several_batches() {
    let dir = tempfile::tempdir().unwrap();
    let (src, desc) = source(dir.path(), 9_000);
    let v = verify_snapshot(&snapshot_path(dir.path(), desc.index)).unwrap();
    assert!(v.records > 2 * 4096, "{} records", v.records);
    let dst = temp_state();
    dst.restore_snapshot(dir.path(), desc.index).unwrap();
    assert_eq!(dst.digest().unwrap(), src.digest().unwrap());
    assert_eq!(dst.applied_index().unwrap(), desc.index);
    assert!(dst
        .revocation(KMS, "sip:user8999@example.org")
        .unwrap()
        .is_some());
}

#[test]
fn any_flipped_byte_is_rejected_before_the_target_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (_, desc) = source(dir.path(), 5);
    let good = fs::read(snapshot_path(dir.path(), desc.index)).unwrap();
    let header_len = MAGIC.len() + 8 + meta(desc.index, 3).write_to_bytes().unwrap().len() + 32;

    let dst = temp_state();
    populate(&dst, 2);
    let before = dst.digest().unwrap();
    let bad_dir = tempfile::tempdir().unwrap();
    let bad_path = snapshot_path(bad_dir.path(), desc.index);
    for pos in 0..good.len() {
        let mut bad = good.clone();
        bad[pos] ^= 0x01;
        fs::write(&bad_path, &bad).unwrap();
        assert!(
            dst.restore_snapshot(bad_dir.path(), desc.index).is_err(),
            "flip at {pos} accepted"
        );
        if pos < header_len {
            assert!(read_meta(&bad_path).is_err(), "header flip at {pos}");
        }
        assert_eq!(
            dst.digest().unwrap(),
            before,
            "flip at {pos} changed the state"
        );
        assert_eq!(dst.interrupted_restore().unwrap(), None);
    }
    // Truncated and extended files too.
    for bad in [
        &good[..good.len() - 1],
        &good[..40],
        &[good.as_slice(), b"x"].concat(),
    ] {
        fs::write(&bad_path, bad).unwrap();
        assert!(dst.restore_snapshot(bad_dir.path(), desc.index).is_err());
    }
    assert_eq!(dst.digest().unwrap(), before);
    // A valid file under another index's name.
    fs::write(snapshot_path(bad_dir.path(), desc.index + 1), &good).unwrap();
    assert!(matches!(
        dst.restore_snapshot(bad_dir.path(), desc.index + 1),
        Err(SnapshotError::WrongIndex { .. })
    ));
    assert_eq!(dst.digest().unwrap(), before);
}

fn transfer(from: &Path, to: &Path, desc: &SnapshotDescriptor, chunk: usize) -> PathBuf {
    let mut rx = SnapshotReceiver::new(to, desc).unwrap();
    loop {
        let data = read_chunk(from, desc.index, rx.received(), chunk).unwrap();
        if data.is_empty() {
            break;
        }
        assert!(data.len() <= chunk);
        rx.write_chunk(rx.received(), &data).unwrap();
    }
    rx.finish().unwrap()
}

#[test]
fn chunked_transfer_reproduces_the_file_and_restores() {
    let from = tempfile::tempdir().unwrap();
    let to = tempfile::tempdir().unwrap();
    let (src, desc) = source(from.path(), 200);
    assert!(desc.size > 10_000);
    let wire = SnapshotDescriptor::decode(&desc.encode()).unwrap();
    let path = transfer(from.path(), to.path(), &wire, 1000);
    assert_eq!(path, snapshot_path(to.path(), desc.index));
    assert_eq!(
        fs::read(&path).unwrap(),
        fs::read(snapshot_path(from.path(), desc.index)).unwrap()
    );
    assert!(!receive_path(to.path(), desc.index).exists());
    let dst = temp_state();
    dst.restore_snapshot(to.path(), desc.index).unwrap();
    assert_eq!(dst.digest().unwrap(), src.digest().unwrap());
    assert!(read_chunk(from.path(), desc.index, desc.size, 1000)
        .unwrap()
        .is_empty());
    assert!(read_chunk(from.path(), desc.index, u64::MAX, 1000)
        .unwrap()
        .is_empty());
}

#[test]
fn read_chunk_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(snapshot_path(dir.path(), 7), vec![0u8; 3 * MAX_CHUNK_BYTES]).unwrap();
    let chunk = read_chunk(dir.path(), 7, 10, usize::MAX).unwrap();
    assert_eq!(chunk.len(), MAX_CHUNK_BYTES);
    let tail = read_chunk(dir.path(), 7, 3 * MAX_CHUNK_BYTES as u64 - 5, usize::MAX).unwrap();
    assert_eq!(tail.len(), 5);
}

#[test]
fn the_receiver_refuses_out_of_order_oversized_and_mismatched_chunks() {
    let from = tempfile::tempdir().unwrap();
    let to = tempfile::tempdir().unwrap();
    let (_, desc) = source(from.path(), 50);
    let first = read_chunk(from.path(), desc.index, 0, 1000).unwrap();
    let second = read_chunk(from.path(), desc.index, 1000, 1000).unwrap();

    let mut rx = SnapshotReceiver::new(to.path(), &desc).unwrap();
    assert!(matches!(
        rx.write_chunk(1000, &second),
        Err(SnapshotError::OutOfOrder {
            offset: 1000,
            expected: 0
        })
    ));
    rx.write_chunk(0, &first).unwrap();
    assert!(matches!(
        rx.write_chunk(0, &first),
        Err(SnapshotError::OutOfOrder { .. })
    ));
    let too_much = vec![0u8; desc.size as usize];
    assert!(matches!(
        rx.write_chunk(1000, &too_much),
        Err(SnapshotError::TooLarge(_))
    ));
    assert!(matches!(
        rx.write_chunk(1000, &vec![0u8; MAX_CHUNK_BYTES + 1]),
        Err(SnapshotError::TooLarge(_))
    ));
    assert!(rx.finish().is_err(), "incomplete");
    assert!(
        !receive_path(to.path(), desc.index).exists(),
        "partial file kept"
    );

    // A descriptor whose hash is not the file's: finish refuses, nothing is installed.
    let mut wrong = desc;
    wrong.sha256[0] ^= 1;
    let mut rx = SnapshotReceiver::new(to.path(), &wrong).unwrap();
    let mut off = 0;
    while off < desc.size {
        let c = read_chunk(from.path(), desc.index, off, 1000).unwrap();
        rx.write_chunk(off, &c).unwrap();
        off += c.len() as u64;
    }
    assert!(matches!(rx.finish(), Err(SnapshotError::ChecksumMismatch)));
    assert!(!snapshot_path(to.path(), desc.index).exists());

    // A corrupted byte in transit, with the true descriptor.
    let mut rx = SnapshotReceiver::new(to.path(), &desc).unwrap();
    let mut off = 0;
    while off < desc.size {
        let mut c = read_chunk(from.path(), desc.index, off, 1000).unwrap();
        if off == 2000 {
            c[17] ^= 0x80;
        }
        rx.write_chunk(off, &c).unwrap();
        off += c.len() as u64;
    }
    assert!(rx.finish().is_err());
    assert!(!snapshot_path(to.path(), desc.index).exists());

    // Tiny descriptor sizes are refused up front.
    let tiny = SnapshotDescriptor { size: 3, ..desc };
    assert!(SnapshotReceiver::new(to.path(), &tiny).is_err());
}

#[test]
fn an_interrupted_restore_resumes_to_the_right_state() {
    let dir = tempfile::tempdir().unwrap();
    let (src, desc) = source(dir.path(), 5000);
    let dst = temp_state();
    populate(&dst, 10);
    assert_eq!(dst.resume_interrupted_restore(dir.path()).unwrap(), None);

    // Crash mid-restore: marker set, some trees cleared, another half-written.
    set_marker(&dst, desc.index).unwrap();
    dst.db().open_tree("communities").unwrap().clear().unwrap();
    dst.db().open_tree(META_TREE).unwrap().clear().unwrap();
    dst.db()
        .open_tree("revocations")
        .unwrap()
        .insert(b"half", b"written")
        .unwrap();
    assert_eq!(dst.interrupted_restore().unwrap(), Some(desc.index));

    assert_eq!(
        dst.resume_interrupted_restore(dir.path()).unwrap(),
        Some(desc.index)
    );
    assert_eq!(dst.digest().unwrap(), src.digest().unwrap());
    assert_eq!(dst.applied_index().unwrap(), desc.index);
    assert_eq!(dst.interrupted_restore().unwrap(), None);
    assert_eq!(dst.resume_interrupted_restore(dir.path()).unwrap(), None);
}

#[test]
fn write_refuses_a_state_at_another_index() {
    let dir = tempfile::tempdir().unwrap();
    let s = temp_state();
    let index = populate(&s, 2);
    for wrong in [index - 1, index + 1] {
        assert!(matches!(
            write_snapshot(&s, dir.path(), &meta(wrong, 1)),
            Err(SnapshotError::WrongIndex { expected, found }) if expected == wrong && found == index
        ));
    }
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn older_snapshots_are_pruned_but_the_previous_one_stays() {
    let dir = tempfile::tempdir().unwrap();
    let s = temp_state();
    let first = populate(&s, 1);
    fs::write(dir.path().join("snap-1.tmp"), b"leftover").unwrap();
    fs::write(dir.path().join("unrelated.bin"), b"x").unwrap();
    for i in first..first + 4 {
        if i > first {
            s.apply_empty(i).unwrap();
        }
        write_snapshot(&s, dir.path(), &meta(i, 1)).unwrap();
    }
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut expected = vec![
        format!("snap-{}.bin", first + 2),
        format!("snap-{}.bin", first + 3),
        "unrelated.bin".to_string(),
    ];
    expected.sort();
    assert_eq!(names, expected);
}

#[test]
fn descriptor_decoding_never_panics() {
    let d = SnapshotDescriptor {
        index: u64::MAX,
        term: 9,
        size: 123_456,
        sha256: [0xAB; 32],
    };
    let bytes = d.encode();
    assert!(bytes.len() <= MAX_DESCRIPTOR_BYTES);
    assert_eq!(SnapshotDescriptor::decode(&bytes).unwrap(), d);
    for n in 0..bytes.len() {
        assert!(SnapshotDescriptor::decode(&bytes[..n]).is_err());
    }
    assert!(SnapshotDescriptor::decode(&[bytes.as_slice(), &[0]].concat()).is_err());
    assert!(SnapshotDescriptor::decode(&[0xFF; 64]).is_err());
    assert!(SnapshotDescriptor::decode(&[0u8; 4096]).is_err());
    let mut x: u32 = 0x1234_5678;
    for len in 0..200 {
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let _ = SnapshotDescriptor::decode(&junk);
    }
}

#[test]
fn hostile_lengths_and_marker_records_are_corrupt() {
    // A well-formed, correctly hashed file whose record names the marker tree, and one whose
    // length field claims 4 GiB: both refused without a large allocation.
    let m = meta(0, 0).write_to_bytes().unwrap();
    let build = |body: &[u8]| {
        let mut f = MAGIC.to_vec();
        f.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        f.extend_from_slice(&(m.len() as u32).to_be_bytes());
        f.extend_from_slice(&m);
        let h = ring::digest::digest(&SHA256, &f);
        f.extend_from_slice(h.as_ref());
        f.extend_from_slice(body);
        let h = ring::digest::digest(&SHA256, &f);
        f.extend_from_slice(h.as_ref());
        f
    };
    let record = |name: &[u8], key_len: u32| {
        let mut b = vec![TAG_RECORD];
        b.extend_from_slice(&(name.len() as u32).to_be_bytes());
        b.extend_from_slice(name);
        b.extend_from_slice(&key_len.to_be_bytes());
        b
    };
    let dir = tempfile::tempdir().unwrap();
    let path = snapshot_path(dir.path(), 0);
    let dst = temp_state();

    let mut empty = vec![TAG_END];
    empty.extend_from_slice(&0u64.to_be_bytes());
    fs::write(&path, build(&empty)).unwrap();
    verify_snapshot(&path).unwrap();

    for body in [
        record(restore::MARKER_TREE.as_bytes(), 0),
        record(b"meta", u32::MAX),
        record(b"meta", MAX_RECORD_BYTES),
        vec![7u8],
    ] {
        let mut body = body;
        body.extend_from_slice(&[0u8; 4]);
        body.push(TAG_END);
        body.extend_from_slice(&1u64.to_be_bytes());
        fs::write(&path, build(&body)).unwrap();
        assert!(matches!(
            verify_snapshot(&path),
            Err(SnapshotError::Corrupt(_))
        ));
        assert!(dst.restore_snapshot(dir.path(), 0).is_err());
    }
}

/// Item: a file being served is not pruned under the follower fetching it; once nobody asked
/// for a chunk for longer than the lease, it is.
#[test]
fn a_snapshot_being_served_is_kept_until_its_lease_ends() {
    let dir = tempfile::tempdir().unwrap();
    let s = temp_state();
    let first = populate(&s, 50);
    write_snapshot(&s, dir.path(), &meta(first, 1)).unwrap();
    // A follower starts fetching `first`; the leader writes three more snapshots meanwhile.
    let head = read_chunk(dir.path(), first, 0, 100).unwrap();
    assert_eq!(head.len(), 100);
    for i in first + 1..first + 4 {
        s.apply_empty(i).unwrap();
        write_snapshot(&s, dir.path(), &meta(i, 1)).unwrap();
    }
    assert!(
        snapshot_path(dir.path(), first).exists(),
        "served file pruned"
    );
    assert!(!snapshot_path(dir.path(), first + 1).exists());
    assert_eq!(read_chunk(dir.path(), first, 100, 100).unwrap().len(), 100);

    // Nobody asked for a chunk for longer than the lease: the next pruning deletes it.
    let lease = transfer::lease_path(dir.path(), first);
    let long_ago = std::time::SystemTime::now() - SERVE_LEASE - std::time::Duration::from_secs(1);
    fs::File::options()
        .write(true)
        .open(&lease)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    s.apply_empty(first + 4).unwrap();
    write_snapshot(&s, dir.path(), &meta(first + 4, 1)).unwrap();
    assert!(!snapshot_path(dir.path(), first).exists());
    assert!(!lease.exists());
    assert!(snapshot_path(dir.path(), first + 3).exists());
}

/// The hand-written descriptor encoding is bincode's, byte for byte (peers decode it so).
#[test]
fn descriptor_encoding_is_bincode_standard() {
    let edges = [
        0u64,
        1,
        250,
        251,
        255,
        256,
        65_535,
        65_536,
        u32::MAX as u64,
        u32::MAX as u64 + 1,
        u64::MAX,
    ];
    for (i, &a) in edges.iter().enumerate() {
        for &b in &edges {
            let d = SnapshotDescriptor {
                index: a,
                term: b,
                size: edges[(i + 3) % edges.len()],
                sha256: [a as u8 ^ 0x5A; 32],
            };
            let reference = bincode::serde::encode_to_vec(d, bincode::config::standard()).unwrap();
            assert_eq!(d.encode(), reference);
            assert_eq!(SnapshotDescriptor::decode(&d.encode()).unwrap(), d);
        }
    }
}
