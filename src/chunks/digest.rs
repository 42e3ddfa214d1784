//! The BLAKE3 digest that names a chunk (and checks a whole file).
use std::fmt;
use std::str::FromStr;

/// A 32-byte BLAKE3 digest. Displays as 64 lower-case hex digits, as
/// `b3sum` prints it and as `ckpt.json` records file digests.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

/// Hashes 8 of the 32 bytes: they are already uniform, and sets and maps
/// of digests hold a quarter of a million entries per GiB of checkpoint.
/// The map's hasher stays keyed (`RandomState`), so a container cannot
/// choose pages whose digests collide in a map.
impl std::hash::Hash for Digest {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(u64::from_le_bytes(self.0[..8].try_into().expect("8 bytes")));
    }
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    /// 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
}

impl From<blake3::Hash> for Digest {
    fn from(h: blake3::Hash) -> Digest {
        Digest(*h.as_bytes())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Short, for test output; Display gives the whole digest.
        write!(f, "Digest({})", &self.to_hex()[..12])
    }
}

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a BLAKE3 digest (64 lower-case hex digits): {0:?}")]
pub struct BadDigest(pub String);

impl FromStr for Digest {
    type Err = BadDigest;
    /// Accepts exactly 64 lower-case hex digits, the only form ckpt writes.
    fn from_str(s: &str) -> Result<Digest, BadDigest> {
        let ok = s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !ok {
            return Err(BadDigest(s.to_string()));
        }
        blake3::Hash::from_hex(s)
            .map(Digest::from)
            .map_err(|_| BadDigest(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_only_lower_case() {
        let d = Digest::of(b"page");
        let hex = d.to_string();
        assert_eq!(hex, blake3::hash(b"page").to_hex().to_string());
        assert_eq!(hex.parse::<Digest>().unwrap(), d);
        for bad in [
            hex.to_uppercase(),
            hex[..63].to_string(),
            format!("{hex}0"),
            "g".repeat(64),
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
    }
}
