//! Free text: failure reasons, contacts, audit targets and details.

use core::fmt;
use core::str::FromStr;

use crate::error::Error;

/// Free text of at most `MAX` bytes: 1 to `MAX` bytes of UTF-8 in which
/// every character is visible or a plain space, so that it prints as what
/// it is in a terminal, a log line or an operator's screen. Every format
/// and table that stores free text holds one of these, with its own cap
/// (`FreeText<256>` for a receipt's failure reason, and so on); the rule is
/// checked on construction, so a value of this type never breaks it.
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
///
/// ```
/// use shardkeep_types::FreeText;
///
/// let reason = FreeText::<64>::new("container did not open: wrong identity")?;
/// assert_eq!(reason.as_str(), "container did not open: wrong identity");
/// assert!(FreeText::<64>::new("two\nlines").is_err());
/// assert!(FreeText::<64>::new("").is_err());
///
/// // An error message made fit to store: refused characters become spaces,
/// // and it is cut at a character boundary within the cap.
/// let lossy = FreeText::<8>::sanitized("bad\tbyte: é")?;
/// assert_eq!(lossy.as_str(), "bad byte");
/// # Ok::<(), shardkeep_types::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FreeText<const MAX: usize>(String);

impl<const MAX: usize> FreeText<MAX> {
    /// The cap, in bytes.
    pub const MAX_LEN: usize = MAX;

    /// Validates and wraps free text.
    ///
    /// # Errors
    /// [`Error::FreeTextLength`] for empty text or text over `MAX` bytes,
    /// [`Error::FreeTextCharacter`] naming the first refused character.
    pub fn new(text: impl Into<String>) -> Result<Self, Error> {
        let text = text.into();
        check(&text, MAX)?;
        Ok(Self(text))
    }

    /// Validates bytes read from the wire or a database.
    ///
    /// # Errors
    /// As [`FreeText::new`]; bytes that are not UTF-8 are
    /// [`Error::FreeTextCharacter`] at the first invalid byte.
    pub fn from_utf8(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.is_empty() || bytes.len() > MAX {
            return Err(Error::FreeTextLength {
                len: bytes.len(),
                max: MAX,
            });
        }
        let text = core::str::from_utf8(bytes).map_err(|error| Error::FreeTextCharacter {
            offset: error.valid_up_to(),
        })?;
        Self::new(text)
    }

    /// Makes free text out of any text, losing what does not fit: every
    /// refused character becomes a space, and the text is cut at the last
    /// character boundary within `MAX` bytes. For turning an error message
    /// into a failure reason.
    ///
    /// # Errors
    /// [`Error::FreeTextLength`] when nothing is left: `text` is empty, or
    /// its first character is longer than `MAX`.
    pub fn sanitized(text: &str) -> Result<Self, Error> {
        let mut out = String::with_capacity(text.len().min(MAX));
        for c in text.chars() {
            let c = if is_visible(c) { c } else { ' ' };
            if out.len() + c.len_utf8() > MAX {
                break;
            }
            out.push(c);
        }
        Self::new(out)
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, unwrapped.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Checks the rule: 1 to `max` bytes, every character visible or a space.
fn check(text: &str, max: usize) -> Result<(), Error> {
    if text.is_empty() || text.len() > max {
        return Err(Error::FreeTextLength {
            len: text.len(),
            max,
        });
    }
    match text.char_indices().find(|(_, c)| !is_visible(*c)) {
        Some((offset, _)) => Err(Error::FreeTextCharacter { offset }),
        None => Ok(()),
    }
}

/// Whether `c` may appear in free text (see [`FreeText`]).
fn is_visible(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    // ASCII without the category table lookup (audit details are ASCII
    // almost always, and built on every audited step): its only characters
    // in the refused categories are the controls.
    if c.is_ascii() {
        return !c.is_ascii_control();
    }
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

impl<const MAX: usize> fmt::Debug for FreeText<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FreeText({:?})", self.0)
    }
}

impl<const MAX: usize> fmt::Display for FreeText<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const MAX: usize> FromStr for FreeText<MAX> {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl<const MAX: usize> TryFrom<&str> for FreeText<MAX> {
    type Error = Error;

    fn try_from(text: &str) -> Result<Self, Error> {
        Self::new(text)
    }
}

impl<const MAX: usize> TryFrom<String> for FreeText<MAX> {
    type Error = Error;

    fn try_from(text: String) -> Result<Self, Error> {
        Self::new(text)
    }
}

impl<const MAX: usize> AsRef<str> for FreeText<MAX> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> PartialEq<str> for FreeText<MAX> {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl<const MAX: usize> PartialEq<&str> for FreeText<MAX> {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn is_free_text<const MAX: usize>(text: &str) -> bool {
        FreeText::<MAX>::new(text).is_ok()
    }

    /// The ASCII shortcut of `is_visible` decides every ASCII character as
    /// the category table does.
    #[test]
    fn ascii_is_decided_as_the_category_table_decides_it() {
        use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
        for c in (0u8..=0x7f).map(char::from) {
            let by_table = !matches!(
                c.general_category(),
                GeneralCategory::Control
                    | GeneralCategory::Format
                    | GeneralCategory::LineSeparator
                    | GeneralCategory::ParagraphSeparator
                    | GeneralCategory::PrivateUse
                    | GeneralCategory::Unassigned
                    | GeneralCategory::Surrogate
            );
            assert_eq!(is_visible(c), by_table, "{c:?}");
        }
    }

    #[test]
    fn free_text_is_non_empty_bounded_and_printable() {
        assert!(is_free_text::<64>("disk full at escrow-co"));
        assert!(is_free_text::<64>("müde, aber da"));
        assert!(is_free_text::<64>(&"x".repeat(64)));
        assert_eq!(
            FreeText::<64>::new("x".repeat(65)),
            Err(Error::FreeTextLength { len: 65, max: 64 })
        );
        assert_eq!(
            FreeText::<64>::new(""),
            Err(Error::FreeTextLength { len: 0, max: 64 })
        );
        for bad in [
            "line\nbreak",
            "tab\there",
            "esc\u{1b}[31m",
            "del\u{7f}",
            "c1\u{85}",
        ] {
            assert!(!is_free_text::<64>(bad), "{bad:?}");
        }
        assert_eq!(
            FreeText::<64>::new("line\nbreak"),
            Err(Error::FreeTextCharacter { offset: 4 })
        );
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
            assert!(!is_free_text::<64>(bad), "{bad:?}");
        }
        for good in [
            "Zürich, 3 Tage zu spät",
            "東京 – 配送失敗",
            "emoji ok \u{1f4e6}",
            "non\u{a0}breaking space",
            "accent e\u{301}",
        ] {
            assert!(is_free_text::<64>(good), "{good:?}");
        }
    }

    #[test]
    fn bytes_must_be_utf8_within_the_cap() {
        assert_eq!(FreeText::<8>::from_utf8(b"ok").unwrap().as_str(), "ok");
        assert_eq!(
            FreeText::<8>::from_utf8(b"ab\xffcd"),
            Err(Error::FreeTextCharacter { offset: 2 })
        );
        assert_eq!(
            FreeText::<8>::from_utf8(&[b'a'; 9]),
            Err(Error::FreeTextLength { len: 9, max: 8 })
        );
        assert_eq!(
            FreeText::<8>::from_utf8(b""),
            Err(Error::FreeTextLength { len: 0, max: 8 })
        );
    }

    #[test]
    fn sanitized_replaces_refused_characters_and_cuts_on_a_boundary() {
        assert_eq!(
            FreeText::<64>::sanitized("open failed:\n\u{1b}[2J\u{202e}x")
                .unwrap()
                .as_str(),
            "open failed:  [2J x"
        );
        // "é" is two bytes: it does not fit in the last byte of the cap.
        assert_eq!(FreeText::<4>::sanitized("abcé").unwrap().as_str(), "abc");
        assert_eq!(FreeText::<5>::sanitized("abcé").unwrap().as_str(), "abcé");
        assert_eq!(
            FreeText::<64>::sanitized(""),
            Err(Error::FreeTextLength { len: 0, max: 64 })
        );
        assert_eq!(
            FreeText::<1>::sanitized("é"),
            Err(Error::FreeTextLength { len: 0, max: 1 })
        );
    }

    #[test]
    fn conversions_and_printing() {
        let text: FreeText<16> = "drill passed".parse().unwrap();
        assert_eq!(text, "drill passed");
        assert_eq!(text.to_string(), "drill passed");
        assert_eq!(format!("{text:?}"), "FreeText(\"drill passed\")");
        assert_eq!(FreeText::<16>::try_from("x").unwrap().as_ref(), "x");
        assert_eq!(
            FreeText::<16>::try_from(String::from("y"))
                .unwrap()
                .into_string(),
            "y"
        );
        assert_eq!(FreeText::<16>::MAX_LEN, 16);
    }

    proptest! {
        /// Printable text (letters, marks, numbers, punctuation, symbols,
        /// spaces) is free text; putting one control, format or separator
        /// character anywhere into it makes it not.
        #[test]
        fn one_invisible_character_anywhere_refuses_the_text(
            text in proptest::string::string_regex(
                "[\\p{L}\\p{M}\\p{N}\\p{P}\\p{S}\\p{Zs}]{1,40}"
            ).unwrap(),
            bad in proptest::string::string_regex("[\\p{Cc}\\p{Cf}\\p{Zl}\\p{Zp}]").unwrap(),
            at in any::<prop::sample::Index>(),
        ) {
            prop_assert!(is_free_text::<160>(&text));
            let mut chars: Vec<char> = text.chars().collect();
            let at = at.index(chars.len() + 1);
            chars.splice(at..at, bad.chars());
            let spoiled: String = chars.into_iter().collect();
            prop_assert!(!is_free_text::<164>(&spoiled), "{:?}", spoiled);
        }

        /// Whatever goes in, `sanitized` gives valid free text within the
        /// cap (or nothing, for nothing), and leaves valid free text as it
        /// is.
        #[test]
        fn sanitized_is_always_free_text_and_keeps_free_text(text in any::<String>()) {
            match FreeText::<32>::sanitized(&text) {
                Ok(clean) => {
                    prop_assert!(clean.as_str().len() <= 32);
                    prop_assert!(FreeText::<32>::new(clean.as_str()).is_ok());
                    // Character by character: kept, or a refused one made a space.
                    for (kept, original) in clean.as_str().chars().zip(text.chars()) {
                        prop_assert!(kept == original || (kept == ' ' && !is_visible(original)));
                    }
                    // Cut only where the next character would not fit.
                    let next = text.chars().nth(clean.as_str().chars().count());
                    let next_len = next.map(|c| if is_visible(c) { c.len_utf8() } else { 1 });
                    prop_assert!(next_len.is_none_or(|len| clean.as_str().len() + len > 32));
                }
                Err(error) => {
                    prop_assert!(text.is_empty(), "{:?}: {:?}", text, error);
                }
            }
            if let Ok(valid) = FreeText::<32>::new(text.clone()) {
                prop_assert_eq!(FreeText::<32>::sanitized(&text).unwrap(), valid);
            }
        }

        /// Bytes and text agree: `from_utf8` accepts exactly the UTF-8
        /// encodings of what `new` accepts.
        #[test]
        fn from_utf8_agrees_with_new(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let from_bytes = FreeText::<32>::from_utf8(&bytes);
            match core::str::from_utf8(&bytes) {
                Ok(text) => prop_assert_eq!(from_bytes, FreeText::<32>::new(text)),
                Err(_) => prop_assert!(from_bytes.is_err()),
            }
        }
    }
}
