//! The key-parameters payload carried in MIKEY general extension type 7 (TS 33.180 E.6): key
//! type, key status, activation and expiry time, a text, and — for GMK, MKFC and MuSiK — the
//! group IDs the key belongs to.
//!
//! Layout (TS 33.180 E.6.1, field order and sizes as implemented by Streamwide libmikey
//! `MikeyKeyParameters.cpp`, which cites §E.6.1–E.6.3 and §E.6.11; the clear form below
//! reproduces the fourth published interop I_MESSAGE's extension byte for byte):
//!
//! ```text
//! key type (1) ‖ status (4) ‖ activation time (5) ‖ expiry time (5) ‖ text length (2) ‖ text
//! [GMK/MKFC/MuSiK: group IDs length (2) ‖ number of group IDs (1) ‖ {IEI (1) ‖ len (2) ‖ id}*]
//! ```
//!
//! Times are the 40 low bits of NTP seconds. The status bits are 0x1 "not revoked" and 0x2
//! "shared with a security gateway". Newer clients send this payload protected under a key
//! derived from the transported key (the first three interop messages); that protected form is
//! kept opaque by the codec and is not parsed here. The legacy clear form has no group-ID
//! block even for a GMK, so the block is optional on input.

use super::CryptoError;

/// Key type codes (TS 33.180 E.6.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum KeyType {
    Gmk = 1,
    Pck = 2,
    Csk = 3,
    Spk = 4,
    Mkfc = 5,
    Mscck = 6,
    Musik = 7,
}

impl KeyType {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Gmk,
            2 => Self::Pck,
            3 => Self::Csk,
            4 => Self::Spk,
            5 => Self::Mkfc,
            6 => Self::Mscck,
            7 => Self::Musik,
            _ => return None,
        })
    }

    /// Whether the payload carries the group-ID block for this key type.
    fn has_groups(self) -> bool {
        matches!(self, Self::Gmk | Self::Mkfc | Self::Musik)
    }
}

pub const STATUS_NOT_REVOKED: u32 = 0x1;
pub const STATUS_SHARED_WITH_GATEWAY: u32 = 0x2;
const TIME_MAX: u64 = (1 << 40) - 1;

/// One group ID element (TS 24.282 IEI, length, value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupId {
    pub iei: u8,
    pub id: Vec<u8>,
}

/// A clear key-parameters payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyParameters {
    pub key_type: KeyType,
    pub status: u32,
    /// NTP seconds (40 bits).
    pub activation_time: u64,
    /// NTP seconds (40 bits); 0 means none.
    pub expiry_time: u64,
    pub text: Vec<u8>,
    /// `None`: no group-ID block (legacy form, or a key type without groups).
    pub groups: Option<Vec<GroupId>>,
}

fn malformed(reason: &'static str) -> CryptoError {
    CryptoError::Mikey(reason)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CryptoError> {
        if self.0.len() < n {
            return Err(malformed("key parameters truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn uint(&mut self, n: usize) -> Result<u64, CryptoError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }
}

impl KeyParameters {
    pub fn is_revoked(&self) -> bool {
        self.status & STATUS_NOT_REVOKED == 0
    }

    /// Parses the clear form; trailing bytes are refused.
    pub fn parse(bytes: &[u8]) -> Result<Self, CryptoError> {
        let mut r = Reader(bytes);
        let key_type = KeyType::from_u8(r.uint(1)? as u8).ok_or(malformed("unknown key type"))?;
        let status = r.uint(4)? as u32;
        let activation_time = r.uint(5)?;
        let expiry_time = r.uint(5)?;
        let text_len = r.uint(2)? as usize;
        let text = r.take(text_len)?.to_vec();
        let groups = if key_type.has_groups() && !r.0.is_empty() {
            let block_len = r.uint(2)? as usize;
            let mut block = Reader(r.take(block_len)?);
            let count = if block.0.is_empty() {
                0
            } else {
                block.uint(1)?
            };
            let mut groups = Vec::new();
            for _ in 0..count {
                let iei = block.uint(1)? as u8;
                let len = block.uint(2)? as usize;
                groups.push(GroupId {
                    iei,
                    id: block.take(len)?.to_vec(),
                });
            }
            if !block.0.is_empty() {
                return Err(malformed("trailing bytes in the group-ID block"));
            }
            Some(groups)
        } else {
            None
        };
        if !r.0.is_empty() {
            return Err(malformed("trailing bytes after key parameters"));
        }
        Ok(Self {
            key_type,
            status,
            activation_time,
            expiry_time,
            text,
            groups,
        })
    }

    /// Encodes the clear form. Refuses values that do not fit their fields.
    pub fn encode(&self) -> Result<Vec<u8>, CryptoError> {
        if self.activation_time > TIME_MAX || self.expiry_time > TIME_MAX {
            return Err(malformed("key parameter time does not fit 40 bits"));
        }
        let text_len =
            u16::try_from(self.text.len()).map_err(|_| malformed("key parameter text too long"))?;
        let mut out = Vec::with_capacity(17 + self.text.len());
        out.push(self.key_type as u8);
        out.extend_from_slice(&self.status.to_be_bytes());
        out.extend_from_slice(&self.activation_time.to_be_bytes()[3..]);
        out.extend_from_slice(&self.expiry_time.to_be_bytes()[3..]);
        out.extend_from_slice(&text_len.to_be_bytes());
        out.extend_from_slice(&self.text);
        if let Some(groups) = &self.groups {
            if !self.key_type.has_groups() {
                return Err(malformed("group IDs only go with GMK, MKFC or MuSiK"));
            }
            let count = u8::try_from(groups.len()).map_err(|_| malformed("too many group IDs"))?;
            let mut block = vec![count];
            for g in groups {
                let len = u16::try_from(g.id.len()).map_err(|_| malformed("group ID too long"))?;
                block.push(g.iei);
                block.extend_from_slice(&len.to_be_bytes());
                block.extend_from_slice(&g.id);
            }
            let block_len =
                u16::try_from(block.len()).map_err(|_| malformed("group-ID block too long"))?;
            out.extend_from_slice(&block_len.to_be_bytes());
            out.extend_from_slice(&block);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_interop_extension_parses_and_re_encodes() {
        // Extension type 7 of the fourth published interop I_MESSAGE (legacy GMK for IWF).
        let bytes = [1u8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let kp = KeyParameters::parse(&bytes).unwrap();
        assert_eq!(kp.key_type, KeyType::Gmk);
        assert!(!kp.is_revoked());
        assert_eq!((kp.activation_time, kp.expiry_time), (0, 0));
        assert_eq!(kp.groups, None);
        assert_eq!(kp.encode().unwrap(), bytes);
    }

    #[test]
    fn round_trip_with_groups_and_refusals() {
        let kp = KeyParameters {
            key_type: KeyType::Gmk,
            status: STATUS_NOT_REVOKED | STATUS_SHARED_WITH_GATEWAY,
            activation_time: 3_968_437_672,
            expiry_time: 3_968_437_672 + 86_400,
            text: b"group key".to_vec(),
            groups: Some(vec![GroupId {
                iei: 0x78,
                id: b"sip:group@example.org".to_vec(),
            }]),
        };
        let bytes = kp.encode().unwrap();
        assert_eq!(KeyParameters::parse(&bytes).unwrap(), kp);
        // Every cut fails, except the one that leaves exactly the legacy form (no group block).
        let legacy_len = 17 + kp.text.len();
        for cut in (0..bytes.len()).filter(|c| *c != legacy_len) {
            assert!(
                KeyParameters::parse(&bytes[..cut]).is_err(),
                "truncated at {cut}"
            );
        }
        assert_eq!(
            KeyParameters::parse(&bytes[..legacy_len]).unwrap().groups,
            None
        );
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(KeyParameters::parse(&trailing).is_err());
        let mut bad_type = bytes;
        bad_type[0] = 9;
        assert!(KeyParameters::parse(&bad_type).is_err());
        let too_late = KeyParameters {
            activation_time: 1 << 40,
            ..kp.clone()
        };
        assert!(too_late.encode().is_err());
        let csk_with_groups = KeyParameters {
            key_type: KeyType::Csk,
            ..kp
        };
        assert!(csk_with_groups.encode().is_err());
    }
}
