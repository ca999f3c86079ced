//! The shared vocabulary of names and times: keys, nodes, signers,
//! key-encryption keys, custodians, actors and labels; key versions, share
//! slots and the (key, node, version) triple; timestamps.
//!
//! Every name is 1-64 bytes of a small ASCII alphabet (`[A-Za-z0-9._:-]`;
//! actor ids also allow `@`), so it can be length-prefixed into hashes and
//! signatures, logged, used as a file or database key, and printed to an
//! operator without escaping.

use core::fmt;
use core::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use shardkeep_sss_core::ShareIndex;

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

/// The free-text rule (failure reasons, contacts, audit details): 1 to
/// `max` bytes of UTF-8 in which every character is visible or a plain
/// space, so that it prints as what it is in a terminal, a log line or an
/// operator's screen. Every format and table that stores free text applies
/// this one rule, each with its own error.
///
/// Refused, by Unicode general category (tables of the `unicode-properties`
/// crate, Unicode 18):
///
/// - `Cc` controls (newlines, escapes, C1 codes): they forge log lines and
///   drive terminals;
/// - `Cf` format characters: bidirectional overrides and isolates (U+202E
///   makes `exe.pdf` print as `fdp.exe`), zero-width space, joiners and
///   non-joiners, the byte-order mark, soft hyphen, tag characters: they
///   make two different strings print alike;
/// - `Zl` and `Zp`, U+2028 and U+2029: line breaks to many viewers;
/// - `Co` private use, whose rendering is anyone's guess, and `Cn`
///   unassigned code points and noncharacters, which a later Unicode may
///   make format characters (refusing them now means a new Unicode version
///   can only widen the rule, never invalidate stored text).
///
/// Everything else (letters, marks, numbers, punctuation, symbols including
/// emoji, `Zs` spaces) is accepted. Emoji sequences joined by U+200D are
/// therefore refused; free text here is for operators, not for chat.
#[must_use]
pub fn is_free_text(text: &str, max: usize) -> bool {
    !text.is_empty() && text.len() <= max && text.chars().all(is_visible)
}

/// Whether `c` may appear in free text (see [`is_free_text`]).
fn is_visible(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    !matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
            | GeneralCategory::Surrogate
    )
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

/// One rotation epoch of one node's share of one group key: the unit that
/// key versions, custody maps, drills, approvals, the protocol archive and
/// the keystore file refer to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeVersion {
    /// The group key.
    pub key_id: KeyId,
    /// The node whose share is backed up.
    pub node_id: NodeId,
    /// The rotation epoch.
    pub version: KeyVersion,
}

impl NodeVersion {
    /// Appends the canonical encoding: `u8 len || key_id || u8 len ||
    /// node_id || version (u32 big-endian)`. Injective, so it can go into
    /// AADs, KDF infos and digests as is.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.key_id.encode_prefixed(out);
        self.node_id.encode_prefixed(out);
        out.extend_from_slice(&self.version.get().to_be_bytes());
    }

    /// The share slot of `index` in this version.
    #[must_use]
    pub fn slot(&self, index: ShareIndex) -> ShareSlot {
        ShareSlot {
            key_id: self.key_id.clone(),
            node_id: self.node_id.clone(),
            version: self.version,
            index,
        }
    }
}

impl From<&ShareSlot> for NodeVersion {
    fn from(slot: &ShareSlot) -> Self {
        slot.node_version()
    }
}

impl fmt::Display for NodeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.key_id, self.node_id, self.version)
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

impl ShareSlot {
    /// Appends the canonical encoding: the [`NodeVersion::encode`] fields,
    /// then the share index byte. Injective, like that one.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.key_id.encode_prefixed(out);
        self.node_id.encode_prefixed(out);
        out.extend_from_slice(&self.version.get().to_be_bytes());
        out.push(self.index.get());
    }

    /// The key version this slot belongs to.
    #[must_use]
    pub fn node_version(&self) -> NodeVersion {
        NodeVersion {
            key_id: self.key_id.clone(),
            node_id: self.node_id.clone(),
            version: self.version,
        }
    }
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

/// A point in time: milliseconds since the Unix epoch (UTC), at most
/// `i64::MAX` so that every database stores it as a signed 64-bit integer.
///
/// On the wire receipt and audit timestamps are a big-endian u64 of
/// milliseconds, and decoders refuse values above `i64::MAX`; the envelope's
/// `created_at` is whole UTC seconds (see [`Timestamp::from_unix_seconds`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Self = Self(0);

    /// Milliseconds since the Unix epoch.
    ///
    /// # Errors
    /// [`Error::TimestampOutOfRange`] above `i64::MAX`.
    pub fn from_unix_millis(millis: u64) -> Result<Self, Error> {
        if i64::try_from(millis).is_err() {
            return Err(Error::TimestampOutOfRange(millis));
        }
        Ok(Self(millis))
    }

    /// Whole seconds since the Unix epoch.
    ///
    /// # Errors
    /// [`Error::TimestampOutOfRange`] when the time in milliseconds would be
    /// above `i64::MAX`.
    pub fn from_unix_seconds(seconds: u64) -> Result<Self, Error> {
        let millis = seconds
            .checked_mul(1000)
            .ok_or(Error::TimestampOutOfRange(seconds))?;
        Self::from_unix_millis(millis).map_err(|_| Error::TimestampOutOfRange(seconds))
    }

    /// The current system time. A clock set before 1970 reads as the epoch.
    #[must_use]
    pub fn now() -> Self {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis());
        Self(
            u64::try_from(millis)
                .unwrap_or(u64::MAX)
                .min(i64::MAX.unsigned_abs()),
        )
    }

    /// Milliseconds since the Unix epoch.
    #[must_use]
    pub const fn as_unix_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the Unix epoch, the milliseconds dropped.
    #[must_use]
    pub const fn as_unix_seconds(self) -> u64 {
        self.0 / 1000
    }

    /// This time plus `duration`, `None` past the representable range.
    #[must_use]
    pub fn checked_add(self, duration: Duration) -> Option<Self> {
        let millis = u64::try_from(duration.as_millis()).ok()?;
        Self::from_unix_millis(self.0.checked_add(millis)?).ok()
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with milliseconds, e.g. `2026-11-05T03:14:15.926Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0 % 1000;
        let seconds = self.0 / 1000;
        let (hour, minute, second) = (seconds / 3600 % 24, seconds / 60 % 60, seconds % 60);
        let (year, month, day) = civil_from_days(seconds / 86_400);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z"
        )
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), after
/// Howard Hinnant's `civil_from_days`, restricted to non-negative days.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
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
    fn node_versions_and_slots_convert_both_ways() {
        let version = NodeVersion {
            key_id: KeyId::new("key-1").unwrap(),
            node_id: NodeId::new("node-a").unwrap(),
            version: KeyVersion::new(3),
        };
        let slot = version.slot(ShareIndex::new(2).unwrap());
        assert_eq!(slot.to_string(), "key-1/node-a/v3/2");
        assert_eq!(slot.node_version(), version);
        assert_eq!(NodeVersion::from(&slot), version);
        assert_eq!(version.to_string(), "key-1/node-a/v3");
    }

    #[test]
    fn free_text_is_non_empty_bounded_and_printable() {
        assert!(is_free_text("disk full at escrow-co", 64));
        assert!(is_free_text("müde, aber da", 64));
        assert!(is_free_text(&"x".repeat(64), 64));
        assert!(!is_free_text(&"x".repeat(65), 64));
        assert!(!is_free_text("", 64));
        for bad in [
            "line\nbreak",
            "tab\there",
            "esc\u{1b}[31m",
            "del\u{7f}",
            "c1\u{85}",
        ] {
            assert!(!is_free_text(bad, 64), "{bad:?}");
        }
    }

    /// Finding: free text admitted Unicode format characters. A right-to-
    /// left override, zero-width characters, line and paragraph separators
    /// and a byte-order mark make one string print as another (or split a
    /// log line): refused, as the controls are.
    #[test]
    fn free_text_refuses_format_and_separator_characters() {
        for bad in [
            "invoice \u{202e}fdp.exe",   // RIGHT-TO-LEFT OVERRIDE (Cf)
            "custodian\u{200b}-a",       // ZERO WIDTH SPACE (Cf)
            "zero\u{200d}joiner",        // ZERO WIDTH JOINER (Cf)
            "\u{feff}bom first",         // BYTE ORDER MARK (Cf)
            "soft\u{ad}hyphen",          // SOFT HYPHEN (Cf)
            "isolate \u{2066}x\u{2069}", // LEFT-TO-RIGHT ISOLATE, POP (Cf)
            "tag \u{e0041}",             // TAG LATIN CAPITAL LETTER A (Cf)
            "line\u{2028}separator",     // LINE SEPARATOR (Zl)
            "para\u{2029}separator",     // PARAGRAPH SEPARATOR (Zp)
            "private \u{e000} use",      // private use (Co)
            "unassigned \u{378}",        // unassigned (Cn)
        ] {
            assert!(!is_free_text(bad, 64), "{bad:?}");
        }
        for good in [
            "Zürich, 3 Tage zu spät",
            "東京 – 配送失敗",
            "emoji ok \u{1f4e6}",
            "non\u{a0}breaking space",
            "accent e\u{301}",
        ] {
            assert!(is_free_text(good, 64), "{good:?}");
        }
    }

    proptest::proptest! {
        /// Printable text (letters, marks, numbers, punctuation, symbols,
        /// spaces) is free text; putting one control, format or separator
        /// character anywhere into it makes it not.
        #[test]
        fn one_invisible_character_anywhere_refuses_the_text(
            text in proptest::string::string_regex(
                "[\\p{L}\\p{M}\\p{N}\\p{P}\\p{S}\\p{Zs}]{1,40}"
            ).unwrap(),
            bad in proptest::string::string_regex("[\\p{Cc}\\p{Cf}\\p{Zl}\\p{Zp}]").unwrap(),
            at in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            proptest::prop_assert!(is_free_text(&text, 4 * 40));
            let mut chars: Vec<char> = text.chars().collect();
            let at = at.index(chars.len() + 1);
            chars.splice(at..at, bad.chars());
            let spoiled: String = chars.into_iter().collect();
            proptest::prop_assert!(!is_free_text(&spoiled, 4 * 41), "{:?}", spoiled);
        }
    }

    #[test]
    fn canonical_encodings_are_pinned() {
        let version = NodeVersion {
            key_id: KeyId::new("key-1").unwrap(),
            node_id: NodeId::new("node-a").unwrap(),
            version: KeyVersion::new(3),
        };
        let mut encoded = Vec::new();
        version.encode(&mut encoded);
        assert_eq!(hex::encode(&encoded), "056b65792d31066e6f64652d6100000003");
        let mut slot = Vec::new();
        version.slot(ShareIndex::new(2).unwrap()).encode(&mut slot);
        assert_eq!(hex::encode(&slot), "056b65792d31066e6f64652d610000000302");
        let mut name = Vec::new();
        SignerId::new("s").unwrap().encode_prefixed(&mut name);
        assert_eq!(name, b"\x01s");
    }

    #[test]
    fn timestamps_print_as_rfc3339() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (1_762_312_455_926, "2025-11-05T03:14:15.926Z"),
            (4_102_444_799_999, "2099-12-31T23:59:59.999Z"),
        ];
        for (millis, text) in cases {
            assert_eq!(
                Timestamp::from_unix_millis(millis).unwrap().to_string(),
                text
            );
        }
    }

    #[test]
    fn timestamps_stay_in_i64() {
        assert!(Timestamp::from_unix_millis(i64::MAX.unsigned_abs()).is_ok());
        assert!(matches!(
            Timestamp::from_unix_millis(u64::MAX),
            Err(Error::TimestampOutOfRange(u64::MAX))
        ));
        assert!(
            Timestamp::from_unix_millis(i64::MAX.unsigned_abs())
                .unwrap()
                .checked_add(Duration::from_millis(1))
                .is_none()
        );
        assert!(Timestamp::now() > Timestamp::from_unix_millis(1_700_000_000_000).unwrap());
    }

    /// The last whole second whose milliseconds fit in an `i64`.
    const MAX_SECONDS: u64 = 9_223_372_036_854_775;

    proptest::proptest! {
        #[test]
        fn whole_seconds_round_trip_and_stay_in_i64_millis(
            seconds in proptest::prop_oneof![0..=MAX_SECONDS, MAX_SECONDS + 1..=u64::MAX]
        ) {
            let max_seconds = MAX_SECONDS;
            match Timestamp::from_unix_seconds(seconds) {
                Ok(time) => {
                    proptest::prop_assert!(seconds <= max_seconds);
                    proptest::prop_assert_eq!(time.as_unix_seconds(), seconds);
                    proptest::prop_assert_eq!(time.as_unix_millis(), seconds * 1000);
                }
                Err(error) => {
                    proptest::prop_assert!(seconds > max_seconds);
                    proptest::prop_assert!(matches!(error, Error::TimestampOutOfRange(s) if s == seconds));
                }
            }
        }
    }
}
