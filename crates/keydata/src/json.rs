//! A strict JSON reader and a compact writer for exactly the shapes tss-lib's
//! `LocalPartySaveData` uses: objects, arrays, non-negative integers,
//! `null`, and short ASCII strings (`"Curve"` names).
//!
//! Why not `serde_json`: the data holds secrets, and `serde_json`'s intermediate
//! `String`s and number buffers are never wiped. Here every number's digits
//! live in a [`Zeroizing`] buffer allocated once at its exact size, and the
//! writer measures its output before allocating it, so no reallocation
//! leaves a stale copy behind.
//!
//! Reading accepts any JSON whitespace and any member order (as Go's decoder
//! does) and refuses, before allocating: input over [`MAX_JSON_LEN`], nesting
//! over [`MAX_DEPTH`], arrays over [`MAX_ARRAY_LEN`], objects over
//! [`MAX_OBJECT_MEMBERS`], numbers over [`MAX_DIGITS`] digits, strings over
//! [`MAX_STRING_LEN`] bytes. It also refuses what tss-lib never writes:
//! negative, fractional or exponent numbers, string escapes, `true`/`false`,
//! duplicate keys, and anything after the top-level value.

use core::fmt;

use zeroize::Zeroizing;

use crate::error::JsonError;

/// Largest accepted JSON document. An ECDSA save data of 255 parties,
/// indented, stays well below it.
pub(crate) const MAX_JSON_LEN: usize = 4 << 20;
/// Deepest nesting (tss-lib's is 4: object, array, point object, coordinates).
pub(crate) const MAX_DEPTH: usize = 8;
/// Longest array (one entry per party; shardkeep thresholds stop at 255).
pub(crate) const MAX_ARRAY_LEN: usize = 255;
/// Most members in one object (ECDSA save data has 17).
pub(crate) const MAX_OBJECT_MEMBERS: usize = 32;
/// Most digits in a number: 2^2048 has 617 decimal digits.
pub(crate) const MAX_DIGITS: usize = 617;
/// Longest string (keys and curve names are short).
pub(crate) const MAX_STRING_LEN: usize = 64;

/// Decimal digits of a non-negative integer, canonical (no sign, no leading
/// zero unless the number is `0`), wiped on drop.
pub(crate) struct Digits(Zeroizing<Vec<u8>>);

impl Digits {
    /// Wraps digits produced by this crate's decimal formatter.
    pub(crate) fn from_canonical(digits: Zeroizing<Vec<u8>>) -> Self {
        debug_assert!(is_canonical_digits(&digits));
        Self(digits)
    }

    /// The ASCII digits.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Digits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Numbers may be secret (Xi, Paillier primes): never printed.
        write!(f, "Digits({} digits)", self.0.len())
    }
}

fn is_canonical_digits(digits: &[u8]) -> bool {
    match digits {
        [] => false,
        [b'0'] => true,
        [first, ..] => *first != b'0' && digits.iter().all(u8::is_ascii_digit),
    }
}

/// A parsed JSON value of the supported subset.
#[derive(Debug)]
pub(crate) enum Value {
    Null,
    Number(Digits),
    String(String),
    Array(Vec<Value>),
    /// Members in document order; keys are unique.
    Object(Vec<(String, Value)>),
}

impl Value {
    /// A short name of the value's JSON type, for errors.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Number(_) => "number",
            Self::String(_) => "string",
            Self::Array(_) => "array",
            Self::Object(_) => "object",
        }
    }
}

/// Parses one JSON document of the supported subset.
pub(crate) fn parse(input: &[u8]) -> Result<Value, JsonError> {
    if input.len() > MAX_JSON_LEN {
        return Err(JsonError::TooLarge {
            len: input.len(),
            max: MAX_JSON_LEN,
        });
    }
    let mut parser = Parser { input, pos: 0 };
    parser.skip_whitespace();
    let value = parser.value(0)?;
    parser.skip_whitespace();
    if parser.pos != input.len() {
        return Err(JsonError::TrailingData { offset: parser.pos });
    }
    Ok(value)
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8, expected: &'static str) -> Result<(), JsonError> {
        match self.peek() {
            Some(b) if b == byte => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(JsonError::Unexpected {
                offset: self.pos,
                expected,
            }),
            None => Err(JsonError::UnexpectedEnd { expected }),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Value::String),
            Some(b'0'..=b'9') => self.number().map(Value::Number),
            Some(b'-') => Err(JsonError::NegativeNumber { offset: self.pos }),
            Some(b'n') => {
                if self.input[self.pos..].starts_with(b"null") {
                    self.pos += 4;
                    Ok(Value::Null)
                } else {
                    Err(JsonError::Unexpected {
                        offset: self.pos,
                        expected: "a value",
                    })
                }
            }
            Some(_) => Err(JsonError::Unexpected {
                offset: self.pos,
                expected: "a value (object, array, number, string or null)",
            }),
            None => Err(JsonError::UnexpectedEnd {
                expected: "a value",
            }),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, JsonError> {
        if depth > MAX_DEPTH {
            return Err(JsonError::TooDeep { offset: self.pos });
        }
        self.expect(b'{', "'{'")?;
        let mut members: Vec<(String, Value)> = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_whitespace();
            let key_offset = self.pos;
            if self.peek() != Some(b'"') {
                return Err(self.unexpected("a member name"));
            }
            let key = self.string()?;
            if members.iter().any(|(k, _)| *k == key) {
                return Err(JsonError::DuplicateKey {
                    offset: key_offset,
                    key,
                });
            }
            if members.len() == MAX_OBJECT_MEMBERS {
                return Err(JsonError::TooManyElements { offset: key_offset });
            }
            self.skip_whitespace();
            self.expect(b':', "':'")?;
            self.skip_whitespace();
            let value = self.value(depth)?;
            members.push((key, value));
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(members));
                }
                _ => return Err(self.unexpected("',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, JsonError> {
        if depth > MAX_DEPTH {
            return Err(JsonError::TooDeep { offset: self.pos });
        }
        self.expect(b'[', "'['")?;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_whitespace();
            if items.len() == MAX_ARRAY_LEN {
                return Err(JsonError::TooManyElements { offset: self.pos });
            }
            items.push(self.value(depth)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.unexpected("',' or ']'")),
            }
        }
    }

    /// A string of printable ASCII without escapes: keys and curve names.
    fn string(&mut self) -> Result<String, JsonError> {
        let start = self.pos;
        self.expect(b'"', "'\"'")?;
        let body_start = self.pos;
        loop {
            match self.peek() {
                Some(b'"') => break,
                Some(b'\\') => return Err(JsonError::StringEscape { offset: self.pos }),
                Some(0x20..=0x7e) => {
                    if self.pos - body_start == MAX_STRING_LEN {
                        return Err(JsonError::StringTooLong { offset: start });
                    }
                    self.pos += 1;
                }
                Some(_) => return Err(JsonError::InvalidStringByte { offset: self.pos }),
                None => {
                    return Err(JsonError::UnexpectedEnd { expected: "'\"'" });
                }
            }
        }
        let body = &self.input[body_start..self.pos];
        self.pos += 1;
        // Printable ASCII only, so this cannot fail.
        core::str::from_utf8(body)
            .map(str::to_owned)
            .map_err(|_| JsonError::InvalidStringByte { offset: body_start })
    }

    /// A non-negative integer in canonical JSON form. The extent is scanned
    /// and capped before the digit buffer is allocated at its exact size.
    fn number(&mut self) -> Result<Digits, JsonError> {
        let start = self.pos;
        let len = self.input[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if len > MAX_DIGITS {
            return Err(JsonError::NumberTooLong {
                offset: start,
                max_digits: MAX_DIGITS,
            });
        }
        if len > 1 && self.input[start] == b'0' {
            return Err(JsonError::LeadingZero { offset: start });
        }
        self.pos += len;
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return Err(JsonError::NonIntegerNumber { offset: start });
        }
        let mut digits = Zeroizing::new(Vec::with_capacity(len));
        digits.extend_from_slice(&self.input[start..self.pos]);
        Ok(Digits(digits))
    }

    fn unexpected(&self, expected: &'static str) -> JsonError {
        if self.pos >= self.input.len() {
            JsonError::UnexpectedEnd { expected }
        } else {
            JsonError::Unexpected {
                offset: self.pos,
                expected,
            }
        }
    }
}

/// Serializes `value` compactly, as Go's `json.Marshal` does for these
/// shapes: no whitespace, members in the order given. The output buffer is
/// allocated once at its exact size and wiped on drop.
pub(crate) fn write(value: &Value) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(encoded_len(value)));
    write_into(value, &mut out);
    debug_assert_eq!(out.len(), out.capacity());
    out
}

fn encoded_len(value: &Value) -> usize {
    match value {
        Value::Null => 4,
        Value::Number(digits) => digits.0.len(),
        Value::String(s) => s.len() + 2,
        Value::Array(items) => {
            2 + items.len().saturating_sub(1) + items.iter().map(encoded_len).sum::<usize>()
        }
        Value::Object(members) => {
            2 + members.len().saturating_sub(1)
                + members
                    .iter()
                    .map(|(k, v)| k.len() + 3 + encoded_len(v))
                    .sum::<usize>()
        }
    }
}

fn write_into(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Number(digits) => out.extend_from_slice(&digits.0),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_into(item, out);
            }
            out.push(b']');
        }
        Value::Object(members) => {
            out.push(b'{');
            for (i, (key, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_into(item, out);
            }
            out.push(b'}');
        }
    }
}

/// Strings written here are field and curve names: printable ASCII without
/// `"`, `\`, `<`, `>` or `&`, which Go writes verbatim.
fn write_string(s: &str, out: &mut Vec<u8>) {
    debug_assert!(
        s.bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && !b"\"\\<>&".contains(&b))
    );
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(input: &str) -> String {
        let value = parse(input.as_bytes()).unwrap();
        String::from_utf8(write(&value).to_vec()).unwrap()
    }

    #[test]
    fn compacts_any_whitespace_and_keeps_member_order() {
        assert_eq!(
            roundtrip(
                " {\n\t\"b\" : [ 1 ,\r\n 20 ] , \"a\":null, \"c\":{\"Curve\":\"ed25519\"}}  "
            ),
            r#"{"b":[1,20],"a":null,"c":{"Curve":"ed25519"}}"#
        );
        assert_eq!(roundtrip("[]"), "[]");
        assert_eq!(roundtrip("{}"), "{}");
        assert_eq!(roundtrip("0"), "0");
    }

    #[test]
    fn refuses_what_tss_lib_never_writes() {
        type Case = (&'static str, fn(&JsonError) -> bool);
        let cases: &[Case] = &[
            ("-1", |e| matches!(e, JsonError::NegativeNumber { .. })),
            ("-0", |e| matches!(e, JsonError::NegativeNumber { .. })),
            ("01", |e| matches!(e, JsonError::LeadingZero { .. })),
            ("1.0", |e| matches!(e, JsonError::NonIntegerNumber { .. })),
            ("1e3", |e| matches!(e, JsonError::NonIntegerNumber { .. })),
            ("true", |e| matches!(e, JsonError::Unexpected { .. })),
            ("nul", |e| matches!(e, JsonError::Unexpected { .. })),
            (r#""a\u0041""#, |e| {
                matches!(e, JsonError::StringEscape { .. })
            }),
            ("\"\u{e9}\"", |e| {
                matches!(e, JsonError::InvalidStringByte { .. })
            }),
            (
                r#"{"a":1,"a":2}"#,
                |e| matches!(e, JsonError::DuplicateKey { key, .. } if key == "a"),
            ),
            ("[1,]", |e| matches!(e, JsonError::Unexpected { .. })),
            ("[1 2]", |e| matches!(e, JsonError::Unexpected { .. })),
            ("{\"a\" 1}", |e| matches!(e, JsonError::Unexpected { .. })),
            ("{1:1}", |e| matches!(e, JsonError::Unexpected { .. })),
            ("[1", |e| matches!(e, JsonError::UnexpectedEnd { .. })),
            ("\"abc", |e| matches!(e, JsonError::UnexpectedEnd { .. })),
            ("", |e| matches!(e, JsonError::UnexpectedEnd { .. })),
            ("1 2", |e| {
                matches!(e, JsonError::TrailingData { offset: 2 })
            }),
            ("{}\0", |e| {
                matches!(e, JsonError::TrailingData { offset: 2 })
            }),
        ];
        for (input, check) in cases {
            let err = parse(input.as_bytes()).unwrap_err();
            assert!(check(&err), "{input:?} gave {err:?}");
        }
    }

    #[test]
    fn caps_are_enforced() {
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(matches!(
            parse(deep.as_bytes()),
            Err(JsonError::TooDeep { .. })
        ));
        let ok_deep = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(ok_deep.as_bytes()).is_ok());

        let long = "9".repeat(MAX_DIGITS + 1);
        assert!(matches!(
            parse(long.as_bytes()),
            Err(JsonError::NumberTooLong { .. })
        ));
        assert!(parse("9".repeat(MAX_DIGITS).as_bytes()).is_ok());

        let wide = format!("[{}]", vec!["0"; MAX_ARRAY_LEN + 1].join(","));
        assert!(matches!(
            parse(wide.as_bytes()),
            Err(JsonError::TooManyElements { .. })
        ));
        let string = format!("\"{}\"", "a".repeat(MAX_STRING_LEN + 1));
        assert!(matches!(
            parse(string.as_bytes()),
            Err(JsonError::StringTooLong { .. })
        ));
        let members: Vec<String> = (0..=MAX_OBJECT_MEMBERS)
            .map(|i| format!("\"k{i}\":0"))
            .collect();
        let object = format!("{{{}}}", members.join(","));
        assert!(matches!(
            parse(object.as_bytes()),
            Err(JsonError::TooManyElements { .. })
        ));
        let huge = vec![b' '; MAX_JSON_LEN + 1];
        assert!(matches!(parse(&huge), Err(JsonError::TooLarge { .. })));
    }

    #[test]
    fn digits_debug_is_redacted() {
        let Value::Number(digits) = parse(b"123456").unwrap() else {
            panic!("not a number")
        };
        assert_eq!(format!("{digits:?}"), "Digits(6 digits)");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_reparses_its_output(text in "[\\[\\]{},:\" 0-9nul\\-.eCa]{0,64}") {
            let bytes = text.into_bytes();
            if let Ok(value) = parse(&bytes) {
                let out = write(&value);
                let again = write(&parse(&out).unwrap());
                proptest::prop_assert_eq!(again.as_slice(), out.as_slice());
            }
        }
    }
}
