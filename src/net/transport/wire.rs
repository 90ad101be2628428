//! The wire format of the peer transport: a batch is a sequence of `u32` big-endian length +
//! protobuf `raft::eraftpb::Message`, bounded in bytes and in messages. A POST carries one
//! batch as its body; a frame of the peer stream carries the sender's clock (`u64`
//! big-endian, Unix ms) followed by one batch ([`encode_frame`] / [`decode_frame`]).
//! Nothing here panics on what a peer sends: every length is checked against what is left.

use protobuf::Message as _;
use raft::eraftpb::Message;

use super::{MAX_BATCH_MESSAGES, MAX_BODY_BYTES};

/// Bytes of the length prefix before each message.
const PREFIX: usize = 4;
/// Bytes of the clock stamp before the batch in a stream frame.
pub const STAMP: usize = 8;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("empty batch")]
    Empty,
    #[error("more than {MAX_BATCH_MESSAGES} messages in one batch")]
    TooManyMessages,
    #[error("batch of {0} bytes is over the {MAX_BODY_BYTES} byte limit")]
    TooLarge(usize),
    #[error("truncated message at byte {0}")]
    Truncated(usize),
    #[error("message at byte {offset}: {reason}")]
    Protobuf { offset: usize, reason: String },
    #[error("stream frame of {0} bytes is shorter than its clock stamp")]
    NoStamp(usize),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodeError {
    #[error("message of {0} bytes cannot be framed within {MAX_BODY_BYTES} bytes")]
    TooLarge(usize),
    #[error("protobuf: {0}")]
    Protobuf(String),
}

/// Encodes one message with its length prefix, appended to `out`.
pub fn encode_message(msg: &Message, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let bytes = msg
        .write_to_bytes()
        .map_err(|e| EncodeError::Protobuf(e.to_string()))?;
    if bytes.len() + PREFIX > MAX_BODY_BYTES {
        return Err(EncodeError::TooLarge(bytes.len()));
    }
    // Fits: checked against MAX_BODY_BYTES, far below u32::MAX.
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(&bytes);
    Ok(())
}

/// Encodes a batch (test and tooling helper; the sender frames incrementally).
pub fn encode_batch(msgs: &[Message]) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    for m in msgs {
        encode_message(m, &mut out)?;
    }
    Ok(out)
}

/// Decodes a batch from a peer. Never panics: every length is checked against what is left.
pub fn decode_batch(body: &[u8]) -> Result<Vec<Message>, DecodeError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(DecodeError::TooLarge(body.len()));
    }
    if body.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut msgs = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let offset = body.len() - rest.len();
        if msgs.len() == MAX_BATCH_MESSAGES {
            return Err(DecodeError::TooManyMessages);
        }
        let (prefix, tail) = rest
            .split_first_chunk::<PREFIX>()
            .ok_or(DecodeError::Truncated(offset))?;
        let len = u32::from_be_bytes(*prefix) as usize;
        if len > tail.len() {
            return Err(DecodeError::Truncated(offset));
        }
        let (bytes, tail) = tail.split_at(len);
        let msg = Message::parse_from_bytes(bytes).map_err(|e| DecodeError::Protobuf {
            offset,
            reason: e.to_string(),
        })?;
        msgs.push(msg);
        rest = tail;
    }
    Ok(msgs)
}

/// A stream frame: the sender's clock `sent_ms`, then the encoded `batch`.
pub fn encode_frame(sent_ms: u64, batch: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(STAMP + batch.len());
    out.extend_from_slice(&sent_ms.to_be_bytes());
    out.extend_from_slice(batch);
    out
}

/// Splits a stream frame into the sender's clock and its decoded batch.
pub fn decode_frame(frame: &[u8]) -> Result<(u64, Vec<Message>), DecodeError> {
    let (stamp, batch) = frame
        .split_first_chunk::<STAMP>()
        .ok_or(DecodeError::NoStamp(frame.len()))?;
    Ok((u64::from_be_bytes(*stamp), decode_batch(batch)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::eraftpb::{Entry, MessageType};

    fn msg(i: u64) -> Message {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgAppend);
        m.to = 2;
        m.from = 1;
        m.term = 3;
        m.index = i;
        let e = Entry {
            index: i + 1,
            data: vec![i as u8; 10].into(),
            ..Default::default()
        };
        m.entries = vec![e].into();
        m
    }

    #[test]
    fn batch_roundtrip_in_order() {
        let msgs: Vec<_> = (0..MAX_BATCH_MESSAGES as u64).map(msg).collect();
        let body = encode_batch(&msgs).expect("encode");
        assert_eq!(decode_batch(&body).expect("decode"), msgs);
    }

    #[test]
    fn decode_rejects_bad_batches() {
        assert_eq!(decode_batch(&[]), Err(DecodeError::Empty));
        assert_eq!(decode_batch(&[0, 0]), Err(DecodeError::Truncated(0)));
        assert_eq!(
            decode_batch(&[0, 0, 0, 9, 1]),
            Err(DecodeError::Truncated(0))
        );
        assert_eq!(
            decode_batch(&[0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::Truncated(0))
        );
        // A field with wire type 7 does not exist.
        assert!(matches!(
            decode_batch(&[0, 0, 0, 1, 0x0f]),
            Err(DecodeError::Protobuf { offset: 0, .. })
        ));
        let too_many: Vec<_> = (0..=MAX_BATCH_MESSAGES as u64).map(msg).collect();
        assert_eq!(
            decode_batch(&encode_batch(&too_many).expect("encode")),
            Err(DecodeError::TooManyMessages)
        );
        // The second message is cut short.
        let mut two = encode_batch(&[msg(1), msg(2)]).expect("encode");
        let first_len = two.len() / 2;
        two.pop();
        assert_eq!(decode_batch(&two), Err(DecodeError::Truncated(first_len)));
    }

    #[test]
    fn a_stream_frame_carries_the_clock_then_the_batch() {
        let msgs = vec![msg(4), msg(5)];
        let frame = encode_frame(1_234_567, &encode_batch(&msgs).expect("encode"));
        assert_eq!(decode_frame(&frame), Ok((1_234_567, msgs)));
        // No stamp, or a stamp and nothing after it.
        assert_eq!(decode_frame(&[1, 2, 3]), Err(DecodeError::NoStamp(3)));
        assert_eq!(decode_frame(&[0; STAMP]), Err(DecodeError::Empty));
        // A bad batch behind a good stamp.
        let mut bad = encode_frame(9, &[0, 0, 0, 9]);
        assert_eq!(decode_frame(&bad), Err(DecodeError::Truncated(0)));
        bad.truncate(2);
        assert_eq!(decode_frame(&bad), Err(DecodeError::NoStamp(2)));
    }
}
