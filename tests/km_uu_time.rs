//! Key-period windows against a real `sealkm` process whose clock is shifted with the test-only
//! `test_clock_offset_s` setting into the middle of a chosen key period. Requests name their
//! period by explicit NTP time, so nothing depends on how long the test takes.

mod common;

use common::{error_code, key_set};

use common::{ntp_hex, unix_now, Env};
use sealkm::kms::period::NTP_UNIX_OFFSET_S;
use sealkm::kms::xml::kms_error::KmsErrorCode;

const ALICE: &str = "sip:alice@sealkm.test";
const PATH: &str = "keyprov/sip%3Aalice%40sealkm.test";
/// The dev environment's `user_key_period_s` (offset 0).
const PERIOD: u64 = 2_592_000;
/// How many periods ahead of the real clock the node is put.
const SHIFT: u64 = 3;

/// An offset that puts the node's clock in the middle of the period `SHIFT` periods after the
/// real one, and that period's number. Half a period (15 days) of slack either way.
fn shifted_clock() -> (i64, u64) {
    let ntp_now = unix_now() + NTP_UNIX_OFFSET_S;
    let node_period = ntp_now / PERIOD + SHIFT;
    let target = node_period * PERIOD + PERIOD / 2;
    (target as i64 - ntp_now as i64, node_period)
}

fn with_offset(config: String, offset: i64) -> String {
    // A top-level key: it must come before the first [table].
    let out = config.replacen(
        "node_id = \"node1\"\n",
        &format!("node_id = \"node1\"\ntest_clock_offset_s = {offset}\n"),
        1,
    );
    assert_ne!(out, config, "the dev config changed shape");
    out
}

/// Middle of period `n`, as a path time segment.
fn mid(n: u64) -> String {
    ntp_hex(n * PERIOD + PERIOD / 2)
}

fn boundary_unix(n: u64) -> i64 {
    (n * PERIOD) as i64 - NTP_UNIX_OFFSET_S as i64
}

#[actix_rt::test]
async fn the_window_follows_the_nodes_clock() {
    let (offset, n) = shifted_clock();
    let env = Env::new(|c| with_offset(c, offset));
    let node = env.start();
    let c = node.client(
        &env.ca(),
        Some(env.token_at(ALICE, (unix_now() as i64 + offset) as u64)),
    );

    // No time given: the node's (shifted) current period, which the real clock is not in.
    let current = key_set(&c.post("keyprov", None).await.unwrap());
    assert_eq!(current.key_period_no, n);
    assert_eq!(
        current.valid_from.unwrap().unix_timestamp(),
        boundary_unix(n)
    );
    assert_eq!(
        current.valid_to.unwrap().unix_timestamp(),
        boundary_unix(n + 1)
    );

    // The current, previous and next periods by explicit time (default window 1/1).
    for k in [n, n - 1, n + 1] {
        let ks = key_set(&c.post(&format!("{PATH}/{}", mid(k)), None).await.unwrap());
        assert_eq!(ks.key_period_no, k);
        assert_eq!(ks.user_uri, ALICE);
    }
    assert_eq!(
        key_set(&c.post(&format!("{PATH}/{}", mid(n)), None).await.unwrap()),
        current
    );

    // Two periods either way (and the real clock's period): outside the window.
    for k in [n + 2, n - 2, n - SHIFT] {
        let r = c.post(&format!("{PATH}/{}", mid(k)), None).await.unwrap();
        assert_eq!(
            (r.status, error_code(&r)),
            (400, KmsErrorCode::PeriodOutOfWindow),
            "period {k} (current {n})"
        );
    }

    // The first second of the next period: KeyPeriodNo n+1, ValidFrom exactly the boundary.
    let first = ntp_hex((n + 1) * PERIOD);
    let next = key_set(&c.post(&format!("{PATH}/{first}"), None).await.unwrap());
    assert_eq!(next.key_period_no, n + 1);
    assert_eq!(
        next.valid_from.unwrap().unix_timestamp(),
        boundary_unix(n + 1)
    );
    assert_eq!(next.valid_from, current.valid_to);
    // The last second of the current period is still period n.
    let last = ntp_hex((n + 1) * PERIOD - 1);
    let ks = key_set(&c.post(&format!("{PATH}/{last}"), None).await.unwrap());
    assert_eq!(ks, current);
    // A fractional NTP part does not move the period.
    let frac = format!("{:016X}", (((n + 1) * PERIOD - 1) << 32) | 0xFFFF_FFFF);
    assert_eq!(
        key_set(&c.post(&format!("{PATH}/{frac}"), None).await.unwrap()).key_period_no,
        n
    );
}

#[actix_rt::test]
async fn periods_after_zero_refuses_the_next_period() {
    let (offset, n) = shifted_clock();
    let env = Env::new(|c| {
        let edited = c.replace("periods_after = 1", "periods_after = 0");
        assert_ne!(edited, c);
        with_offset(edited, offset)
    });
    let node = env.start();
    let c = node.client(
        &env.ca(),
        Some(env.token_at(ALICE, (unix_now() as i64 + offset) as u64)),
    );

    assert_eq!(
        key_set(&c.post(&format!("{PATH}/{}", mid(n)), None).await.unwrap()).key_period_no,
        n
    );
    assert_eq!(
        key_set(
            &c.post(&format!("{PATH}/{}", mid(n - 1)), None)
                .await
                .unwrap()
        )
        .key_period_no,
        n - 1
    );
    for t in [mid(n + 1), ntp_hex((n + 1) * PERIOD)] {
        let r = c.post(&format!("{PATH}/{t}"), None).await.unwrap();
        assert_eq!(
            (r.status, error_code(&r)),
            (400, KmsErrorCode::PeriodOutOfWindow)
        );
    }
}
