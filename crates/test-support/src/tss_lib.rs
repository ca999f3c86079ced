//! The tss-lib keygen fixtures (`LocalPartySaveData` of one ECDSA and one
//! EdDSA group of five parties), stored once, in the keydata crate that
//! owns the format: `crates/keydata/tests/data/tss-lib/`, beside their
//! licence and provenance.

use std::path::PathBuf;

use zeroize::Zeroizing;

/// Parties in each fixture group.
pub const PARTIES: usize = 5;

/// The fixture groups' tss-lib threshold: the degree of the Shamir
/// polynomial, so `TSS_LIB_THRESHOLD + 1 = 3` parties sign.
pub const TSS_LIB_THRESHOLD: usize = 2;

/// Which fixture group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// ECDSA on secp256k1.
    Ecdsa,
    /// EdDSA on ed25519.
    Eddsa,
}

impl Protocol {
    /// Both groups.
    pub const ALL: [Self; 2] = [Self::Ecdsa, Self::Eddsa];

    /// The group's directory below [`fixtures_dir`].
    #[must_use]
    pub fn dir(self) -> &'static str {
        match self {
            Self::Ecdsa => "ecdsa",
            Self::Eddsa => "eddsa",
        }
    }
}

/// `crates/keydata/tests/data/tss-lib`.
#[must_use]
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../keydata/tests/data/tss-lib"
    ))
}

/// The fixture of `party` (0..5), relative to keydata's `tests/data`, as
/// keydata's vectors name it: `tss-lib/ecdsa/keygen_data_0.json`.
#[must_use]
pub fn fixture_name(protocol: Protocol, party: usize) -> String {
    format!("tss-lib/{}/keygen_data_{party}.json", protocol.dir())
}

/// The path of the fixture of `party` (0..5).
#[must_use]
pub fn fixture_path(protocol: Protocol, party: usize) -> PathBuf {
    fixtures_dir()
        .join(protocol.dir())
        .join(format!("keygen_data_{party}.json"))
}

/// The bytes of the fixture of `party` (0..5), in a buffer wiped on drop:
/// the file holds the party's secret share `Xi`.
///
/// # Errors
/// The I/O error, with the path in its message.
pub fn fixture_bytes(protocol: Protocol, party: usize) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let path = fixture_path(protocol, party);
    std::fs::read(&path)
        .map(Zeroizing::new)
        .map_err(|error| std::io::Error::new(error.kind(), format!("{}: {error}", path.display())))
}

/// The `ShareID` of `party` (0..5), big-endian without leading zeros (as
/// keydata's `LocalPartySaveData::share_id` gives it), read from the
/// fixture's JSON text: a test can address a party's peer process without
/// loading that party's secret into its own process.
///
/// # Errors
/// The I/O error, or [`std::io::ErrorKind::InvalidData`] when the file has
/// no decimal `"ShareID"`.
pub fn share_id(protocol: Protocol, party: usize) -> std::io::Result<Vec<u8>> {
    let json = fixture_bytes(protocol, party)?;
    let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidData, "no decimal ShareID");
    let key = b"\"ShareID\"";
    let at = json
        .windows(key.len())
        .position(|w| w == key)
        .ok_or_else(invalid)?;
    let rest = json[at + key.len()..]
        .iter()
        .skip_while(|b| b.is_ascii_whitespace() || **b == b':');
    // Big-endian base-256 digits, times ten plus each decimal digit.
    let mut value: Vec<u8> = Vec::new();
    let mut digits = 0;
    for &byte in rest.take_while(|b| b.is_ascii_digit()) {
        digits += 1;
        let mut carry = u16::from(byte - b'0');
        for limb in value.iter_mut().rev() {
            let wide = u16::from(*limb) * 10 + carry;
            *limb = wide.to_be_bytes()[1];
            carry = wide >> 8;
        }
        while carry > 0 {
            value.insert(0, carry.to_be_bytes()[1]);
            carry >>= 8;
        }
    }
    if digits == 0 {
        return Err(invalid());
    }
    Ok(value)
}

/// The fixtures' JSON without white space: what a writer of compact JSON
/// (Go's `json.Marshal`, `LocalPartySaveData::to_json`) gives for them. The
/// fixtures' strings hold no white space, so every white-space byte is
/// formatting.
#[must_use]
pub fn compact(json: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(
        json.iter()
            .copied()
            .filter(|b| !matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_is_where_the_loader_looks() {
        for protocol in Protocol::ALL {
            for party in 0..PARTIES {
                let bytes = fixture_bytes(protocol, party).unwrap();
                assert!(bytes.starts_with(b"{"), "{protocol:?} {party}");
                assert_eq!(
                    fixtures_dir()
                        .join(fixture_name(protocol, party).trim_start_matches("tss-lib/")),
                    fixture_path(protocol, party)
                );
            }
        }
        assert!(fixture_bytes(Protocol::Ecdsa, PARTIES).is_err());
    }

    #[test]
    fn compact_drops_formatting_only() {
        assert_eq!(
            compact(b"{\n\t\"a\": [1, 2]\r\n}").as_slice(),
            b"{\"a\":[1,2]}"
        );
    }
}
