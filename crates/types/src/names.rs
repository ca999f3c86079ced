//! Names: keys, nodes, signers, key-encryption keys, custodians, actors and
//! labels.
//!
//! Every name is 1-64 bytes of a small ASCII alphabet (`[A-Za-z0-9._:-]`;
//! actor ids also allow `@`), so it can be length-prefixed into hashes and
//! signatures, logged, used as a file or database key, and printed to an
//! operator without escaping.

use core::fmt;
use core::str::FromStr;

use shardkeep_wire::Reader;

use crate::error::Error;

/// Longest accepted name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Whether `byte` may appear in a name: `[A-Za-z0-9._:-]`.
const fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b':' | b'-')
}

/// Whether `byte` may appear in an actor id: a name byte or `@`, so that
/// e-mail-like ids (`ops.alice@example.com`) fit.
const fn is_actor_byte(byte: u8) -> bool {
    is_name_byte(byte) || byte == b'@'
}

/// Checks the name rule: 1 to [`MAX_NAME_LEN`] bytes, each `allowed`;
/// `what` says which kind of name, for the error.
fn check_name(what: &'static str, bytes: &[u8], allowed: fn(u8) -> bool) -> Result<(), Error> {
    if bytes.is_empty() || bytes.len() > MAX_NAME_LEN || !bytes.iter().all(|b| allowed(*b)) {
        return Err(Error::InvalidName {
            what,
            len: bytes.len(),
        });
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $allowed:expr, $alphabet:literal) => {
        $(#[$doc])*
        ///
        #[doc = concat!("1-64 bytes of `", $alphabet, "`.")]
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps a name.
            ///
            /// # Errors
            /// [`Error::InvalidName`] when the name breaks the rule.
            pub fn new(name: impl Into<String>) -> Result<Self, Error> {
                let name = name.into();
                check_name($what, name.as_bytes(), $allowed)?;
                Ok(Self(name))
            }

            /// Validates bytes read from the wire.
            ///
            /// # Errors
            /// [`Error::InvalidName`] when the bytes break the rule.
            pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
                check_name($what, bytes, $allowed)?;
                // Every allowed byte is ASCII, so this cannot fail.
                let name = core::str::from_utf8(bytes).map_err(|_| Error::InvalidName {
                    what: $what,
                    len: bytes.len(),
                })?;
                Ok(Self(name.to_owned()))
            }

            /// The name.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Appends the name with its one-byte length: the canonical
            /// encoding of a name in every shardkeep format, AAD and
            /// signed message.
            pub fn encode_prefixed(&self, out: &mut Vec<u8>) {
                // 1-64 bytes, checked on construction: the length fits.
                out.push(u8::try_from(self.0.len()).unwrap_or(u8::MAX));
                out.extend_from_slice(self.0.as_bytes());
            }

            /// Reads what [`encode_prefixed`](Self::encode_prefixed) writes.
            ///
            /// # Errors
            /// [`Error::Framing`] when the length byte is outside 1-64 or
            /// the name is cut short, [`Error::InvalidName`] for a byte
            /// outside the alphabet.
            pub fn decode_prefixed(reader: &mut Reader<'_>) -> Result<Self, Error> {
                Self::from_bytes(reader.prefixed_u8($what, 1, MAX_NAME_LEN)?)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// The MPC group key a share belongs to (`key_id`).
    KeyId,
    "key_id",
    is_name_byte,
    "[A-Za-z0-9._:-]"
);
name_type!(
    /// The MPC node whose share is backed up (`node_id`).
    NodeId,
    "node_id",
    is_name_byte,
    "[A-Za-z0-9._:-]"
);
name_type!(
    /// The id of a signing key: which key signed an envelope, a receipt or an
    /// audit checkpoint.
    SignerId,
    "signer_id",
    is_name_byte,
    "[A-Za-z0-9._:-]"
);
name_type!(
    /// The id of a key-encryption key (KEK) that wraps data keys.
    KekId,
    "kek_id",
    is_name_byte,
    "[A-Za-z0-9._:-]"
);
name_type!(
    /// An external custodian (the entity holding a share container).
    CustodianId,
    "custodian_id",
    is_name_byte,
    "[A-Za-z0-9._:-]"
);
name_type!(
    /// A person or service acting on the system: an operator, a requester,
    /// an approver, a reader of a sealed share.
    ActorId,
    "actor_id",
    is_actor_byte,
    "[A-Za-z0-9._:@-]"
);
name_type!(
    /// A short machine-readable word: an operation name, an approver role, a
    /// ticket reference, the purpose of a share read.
    Label,
    "label",
    is_name_byte,
    "[A-Za-z0-9._:-]"
);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use shardkeep_wire::FramingError;

    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        let name = "Az09._:-".repeat(8);
        assert_eq!(name.len(), 64);
        assert_eq!(KeyId::new(name.clone()).unwrap().as_str(), name);
        assert_eq!(NodeId::from_bytes(name.as_bytes()).unwrap().as_str(), name);
    }

    #[test]
    fn refuses_empty_long_and_foreign_bytes() {
        for bad in ["", &"a".repeat(65), "a b", "a/b", "é", "a\0", "a\n"] {
            assert!(
                matches!(
                    KeyId::new(bad),
                    Err(Error::InvalidName { what: "key_id", .. })
                ),
                "{bad:?}"
            );
        }
        assert!(NodeId::from_bytes(&[0xff]).is_err());
    }

    #[test]
    fn names_follow_their_alphabet() {
        assert!(ActorId::new("ops.alice@example.com").is_ok());
        assert!(Label::new("ops.alice@example.com").is_err());
        assert!(Label::new("INC-1234").is_ok());
        for bad in ["", "a b", "é", &"a".repeat(65), "a\n"] {
            assert!(ActorId::new(bad).is_err(), "{bad:?}");
            assert!(Label::new(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            ActorId::new("a b"),
            Err(Error::InvalidName {
                what: "actor_id",
                ..
            })
        ));
        assert!(matches!(
            Label::new(""),
            Err(Error::InvalidName { what: "label", .. })
        ));
    }

    #[test]
    fn prefixed_encoding_is_pinned_and_bounded() {
        let mut name = Vec::new();
        SignerId::new("s").unwrap().encode_prefixed(&mut name);
        assert_eq!(name, b"\x01s");
        assert_eq!(
            KekId::decode_prefixed(&mut Reader::new(&[0])),
            Err(Error::Framing(FramingError::LengthOutOfRange {
                field: "kek_id",
                len: 0,
                min: 1,
                max: MAX_NAME_LEN
            }))
        );
        assert_eq!(
            KekId::decode_prefixed(&mut Reader::new(&[3, b'a', b'b'])),
            Err(Error::Framing(FramingError::Truncated {
                field: "kek_id",
                needed: 1
            }))
        );
        assert_eq!(
            CustodianId::decode_prefixed(&mut Reader::new(b"\x02a ")),
            Err(Error::InvalidName {
                what: "custodian_id",
                len: 2
            })
        );
    }

    proptest! {
        /// Every valid name round-trips through its prefixed encoding, and
        /// the encoding is exactly one length byte and the name.
        #[test]
        fn names_round_trip_through_the_prefixed_encoding(
            name in "[A-Za-z0-9._:-]{1,64}",
            actor in "[A-Za-z0-9._:@-]{1,64}",
        ) {
            let key = KeyId::new(name.clone()).unwrap();
            let mut out = Vec::new();
            key.encode_prefixed(&mut out);
            prop_assert_eq!(out.len(), 1 + name.len());
            prop_assert_eq!(usize::from(out[0]), name.len());
            let mut reader = Reader::new(&out);
            prop_assert_eq!(KeyId::decode_prefixed(&mut reader).unwrap(), key);
            prop_assert!(reader.finish("name").is_ok());

            let actor = ActorId::new(actor).unwrap();
            let mut out = Vec::new();
            actor.encode_prefixed(&mut out);
            prop_assert_eq!(ActorId::decode_prefixed(&mut Reader::new(&out)).unwrap(), actor);
        }

        /// A byte outside the alphabet anywhere in a name refuses it.
        #[test]
        fn one_foreign_byte_refuses_a_name(
            name in "[A-Za-z0-9._:-]{1,63}",
            bad in any::<u8>().prop_filter("outside the alphabet", |b| {
                !(b.is_ascii_alphanumeric() || b".:_-".contains(b))
            }),
            at in any::<prop::sample::Index>(),
        ) {
            let mut bytes = name.into_bytes();
            let at = at.index(bytes.len() + 1);
            bytes.insert(at, bad);
            prop_assert!(
                matches!(
                    NodeId::from_bytes(&bytes),
                    Err(Error::InvalidName { what: "node_id", .. })
                ),
                "{:?}",
                bytes
            );
        }
    }
}
