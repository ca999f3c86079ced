//! Names of things: keys, nodes, signers, key-encryption keys, custodians.
//!
//! Every name is 1-64 bytes of `[A-Za-z0-9._:-]`, so it can be length-prefixed
//! into hashes and signatures, logged, used as a file or database key, and
//! printed to an operator without escaping.

use core::fmt;
use core::str::FromStr;

use shardkeep_sss_core::ShareIndex;

use crate::error::Error;

/// Longest accepted name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Whether `byte` may appear in a name.
const fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b':' | b'-')
}

/// Checks the name rule; `what` says which kind of name, for the error.
pub(crate) fn check_name(what: &'static str, bytes: &[u8]) -> Result<(), Error> {
    if bytes.is_empty() || bytes.len() > MAX_NAME_LEN || !bytes.iter().all(|b| is_name_byte(*b)) {
        return Err(Error::InvalidName {
            what,
            len: bytes.len(),
        });
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        ///
        /// 1-64 bytes of `[A-Za-z0-9._:-]`.
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps a name.
            ///
            /// # Errors
            /// [`Error::InvalidName`] when the name breaks the rule.
            pub fn new(name: impl Into<String>) -> Result<Self, Error> {
                let name = name.into();
                check_name($what, name.as_bytes())?;
                Ok(Self(name))
            }

            /// Validates bytes read from the wire.
            ///
            /// # Errors
            /// [`Error::InvalidName`] when the bytes break the rule.
            pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
                check_name($what, bytes)?;
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
    "key_id"
);
name_type!(
    /// The MPC node whose share is backed up (`node_id`).
    NodeId,
    "node_id"
);
name_type!(
    /// The id of a signing key: which key signed an envelope, a receipt or an
    /// audit checkpoint.
    SignerId,
    "signer_id"
);
name_type!(
    /// The id of a key-encryption key (KEK) that wraps data keys.
    KekId,
    "kek_id"
);
name_type!(
    /// An external custodian (the entity holding a share container).
    CustodianId,
    "custodian_id"
);

/// A key version: the rotation epoch of one `(key_id, node_id)`. Each
/// rotation produces a new split under the next version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyVersion(u32);

impl KeyVersion {
    /// Wraps a version number.
    #[must_use]
    pub const fn new(version: u32) -> Self {
        Self(version)
    }

    /// The version number.
    #[must_use]
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The version after this one, `None` at `u32::MAX`.
    #[must_use]
    pub const fn next(self) -> Option<Self> {
        match self.0.checked_add(1) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }
}

impl fmt::Display for KeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// One share slot: the unit that is stored, sealed under its own KEK,
/// soft-deleted, rolled back and hard-deleted (crypto-shredded).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShareSlot {
    /// The group key.
    pub key_id: KeyId,
    /// The node whose share was split.
    pub node_id: NodeId,
    /// The rotation epoch.
    pub version: KeyVersion,
    /// The backup share's index.
    pub index: ShareIndex,
}

impl fmt::Display for ShareSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.key_id, self.node_id, self.version, self.index
        )
    }
}

#[cfg(test)]
mod tests {
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
}
