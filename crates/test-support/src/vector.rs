//! The one golden-vector file format, its reader and its writer.
//!
//! A vector file (extension `.vec`) is a header of `key: value` lines, one
//! empty line, then the body: the bytes under test, raw (for a text format,
//! the text), up to the end of the file.
//!
//! ```text
//! expect: ok
//! comment: ECDSA party 0
//! key-id: key-1
//!
//! <body bytes>
//! ```
//!
//! - A key is lowercase ASCII letters, digits and `-`, starting with a
//!   letter. Keys may repeat; the values of a key keep their order.
//! - A value is non-empty UTF-8 without control characters and without
//!   leading or trailing white space; it runs from after `": "` to the end of
//!   the line (so it may itself contain `": "`).
//! - `expect` is mandatory and appears once: `ok`, or the refusal the case
//!   must produce, in the owning crate's words. `comment` is optional. Every
//!   other key is the owning crate's.
//! - Lines end with `\n` alone. The empty line is mandatory, even before an
//!   empty body.
//!
//! Parsing is strict and writing is canonical, so that a regenerated file
//! equals the stored one byte for byte.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The extension of every vector file.
pub const EXTENSION: &str = "vec";

/// The mandatory header key: the expected outcome.
pub const EXPECT: &str = "expect";

/// The optional header key for a human note.
pub const COMMENT: &str = "comment";

/// One header line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    key: String,
    value: String,
    /// The 1-based line it was read from; 0 for a vector built in memory.
    line: usize,
}

/// One golden vector: its headers, in file order, and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vector {
    /// Where it was read from (or the name given when built), for messages.
    file: String,
    headers: Vec<Header>,
    body: Vec<u8>,
}

/// Why a vector file could not be read, written or understood: where, and
/// what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {problem}", line.map(|line| format!(":{line}")).unwrap_or_default())]
pub struct VectorError {
    /// The file (or the name of a vector built in memory).
    pub file: String,
    /// The 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// What is wrong.
    pub problem: Problem,
}

/// What is wrong with a vector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// The file is not named `<name>.vec`.
    #[error("not a vector file: the extension must be .{EXTENSION}")]
    NotAVectorFile,
    /// The header never ends: no empty line follows it.
    #[error("no empty line ends the header")]
    UnterminatedHeader,
    /// A header line is not UTF-8.
    #[error("a header line that is not UTF-8")]
    NotUtf8,
    /// A header line without `": "`.
    #[error("not a `key: value` line")]
    NotAHeaderLine,
    /// A key outside `[a-z][a-z0-9-]*`.
    #[error("invalid key {0:?}: lowercase letters, digits and '-', starting with a letter")]
    InvalidKey(String),
    /// A value that is empty, holds a control character, or starts or ends
    /// with white space.
    #[error("header `{key}`: {reason}")]
    InvalidValue {
        /// The header.
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// A header that must be present is not.
    #[error("no `{0}` header")]
    MissingHeader(String),
    /// A header that must appear once appears again (at the error's line).
    #[error("header `{0}` repeated")]
    RepeatedHeader(String),
    /// A header value that does not parse as the accessor's type.
    #[error("header `{key}`: {reason}")]
    Unparsable {
        /// The header.
        key: String,
        /// Why, from the type's parser.
        reason: String,
    },
    /// A hex header of the wrong length.
    #[error("header `{key}`: {got} bytes, expected {expected}")]
    WrongLength {
        /// The header.
        key: String,
        /// Bytes expected.
        expected: usize,
        /// Bytes found.
        got: usize,
    },
    /// A text body that is not UTF-8.
    #[error("the body is not UTF-8")]
    BodyNotUtf8,
}

fn valid_key(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn value_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        Some("empty value")
    } else if value.chars().any(char::is_control) {
        Some("a control character in the value")
    } else if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        Some("white space around the value")
    } else {
        None
    }
}

impl Vector {
    /// A vector expecting `expect`, with no other header and an empty body.
    #[must_use]
    pub fn new(expect: impl fmt::Display) -> Self {
        Self {
            file: String::from("(new vector)"),
            headers: Vec::new(),
            body: Vec::new(),
        }
        .header(EXPECT, expect)
    }

    /// Appends a header line (checked when written).
    #[must_use]
    pub fn header(mut self, key: &str, value: impl fmt::Display) -> Self {
        self.headers.push(Header {
            key: key.to_owned(),
            value: value.to_string(),
            line: 0,
        });
        self
    }

    /// Appends a `comment` line.
    #[must_use]
    pub fn comment(self, text: impl fmt::Display) -> Self {
        self.header(COMMENT, text)
    }

    /// Appends a header whose value is `bytes` in lowercase hex.
    #[must_use]
    pub fn hex(self, key: &str, bytes: impl AsRef<[u8]>) -> Self {
        self.header(key, hex::encode(bytes))
    }

    /// Replaces the value of the first `key` header in place, or appends the
    /// header when there is none.
    #[must_use]
    pub fn set(mut self, key: &str, value: impl fmt::Display) -> Self {
        match self.headers.iter_mut().find(|header| header.key == key) {
            Some(header) => header.value = value.to_string(),
            None => return self.header(key, value),
        }
        self
    }

    /// Replaces the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Parses the bytes of a vector file; `file` names it in errors.
    ///
    /// # Errors
    /// A [`VectorError`] naming the file, the line and the problem.
    pub fn parse(file: impl Into<String>, bytes: &[u8]) -> Result<Self, VectorError> {
        let file = file.into();
        let fail = |line, problem| VectorError {
            file: file.clone(),
            line: Some(line),
            problem,
        };
        let mut headers = Vec::new();
        let mut at = 0;
        let mut line = 1;
        loop {
            let rest = bytes.get(at..).unwrap_or_default();
            let Some(end) = rest.iter().position(|&b| b == b'\n') else {
                return Err(fail(line, Problem::UnterminatedHeader));
            };
            let raw = rest.get(..end).unwrap_or_default();
            at += end + 1;
            if raw.is_empty() {
                break;
            }
            let text = std::str::from_utf8(raw).map_err(|_| fail(line, Problem::NotUtf8))?;
            let (key, value) = text
                .split_once(": ")
                .ok_or_else(|| fail(line, Problem::NotAHeaderLine))?;
            if !valid_key(key) {
                return Err(fail(line, Problem::InvalidKey(key.to_owned())));
            }
            if let Some(reason) = value_problem(value) {
                return Err(fail(
                    line,
                    Problem::InvalidValue {
                        key: key.to_owned(),
                        reason,
                    },
                ));
            }
            headers.push(Header {
                key: key.to_owned(),
                value: value.to_owned(),
                line,
            });
            line += 1;
        }
        let vector = Self {
            file,
            headers,
            body: bytes.get(at..).unwrap_or_default().to_vec(),
        };
        vector.get(EXPECT)?;
        Ok(vector)
    }

    /// Reads and parses the vector file at `path`.
    ///
    /// # Errors
    /// A [`VectorError`]: the file is not a `.vec` file, cannot be read, or
    /// does not parse.
    pub fn read(path: &Path) -> Result<Self, VectorError> {
        let file = path.display().to_string();
        if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
            return Err(VectorError {
                file,
                line: None,
                problem: Problem::NotAVectorFile,
            });
        }
        let bytes = std::fs::read(path).map_err(|error| VectorError {
            file: file.clone(),
            line: None,
            problem: Problem::Io(error.to_string()),
        })?;
        Self::parse(file, &bytes)
    }

    /// The canonical bytes of this vector: each header as `key: value\n`,
    /// an empty line, the body.
    ///
    /// # Errors
    /// A [`VectorError`] when a key or value breaks the format's rules, or
    /// `expect` is missing or repeated.
    pub fn to_bytes(&self) -> Result<Vec<u8>, VectorError> {
        for header in &self.headers {
            if !valid_key(&header.key) {
                return Err(self.error(header.line, Problem::InvalidKey(header.key.clone())));
            }
            if let Some(reason) = value_problem(&header.value) {
                return Err(self.error(
                    header.line,
                    Problem::InvalidValue {
                        key: header.key.clone(),
                        reason,
                    },
                ));
            }
        }
        self.get(EXPECT)?;
        let mut out = Vec::new();
        for header in &self.headers {
            out.extend_from_slice(header.key.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(header.value.as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(&self.body);
        Ok(out)
    }

    fn error(&self, line: usize, problem: Problem) -> VectorError {
        VectorError {
            file: self.file.clone(),
            line: (line > 0).then_some(line),
            problem,
        }
    }

    /// Where this vector was read from.
    #[must_use]
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The file name without directory and extension (`archive_bad_magic`).
    #[must_use]
    pub fn name(&self) -> &str {
        Path::new(&self.file)
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or(&self.file)
    }

    /// The expected outcome.
    #[must_use]
    pub fn expect(&self) -> &str {
        self.all(EXPECT).next().unwrap_or_default()
    }

    /// The `comment` lines, in order.
    pub fn comments(&self) -> impl Iterator<Item = &str> {
        self.all(COMMENT)
    }

    /// Every header, in file order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .iter()
            .map(|header| (header.key.as_str(), header.value.as_str()))
    }

    /// Every value of `key`, in file order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> {
        self.headers
            .iter()
            .filter(move |header| header.key == key)
            .map(|header| header.value.as_str())
    }

    fn at_most_one(&self, key: &str) -> Result<Option<&Header>, VectorError> {
        let mut found = self.headers.iter().filter(|header| header.key == key);
        let first = found.next();
        match found.next() {
            Some(again) => Err(self.error(again.line, Problem::RepeatedHeader(key.to_owned()))),
            None => Ok(first),
        }
    }

    fn one(&self, key: &str) -> Result<&Header, VectorError> {
        self.at_most_one(key)?
            .ok_or_else(|| self.error(0, Problem::MissingHeader(key.to_owned())))
    }

    /// The value of `key`, which must appear exactly once.
    ///
    /// # Errors
    /// [`Problem::MissingHeader`] or [`Problem::RepeatedHeader`].
    pub fn get(&self, key: &str) -> Result<&str, VectorError> {
        self.one(key).map(|header| header.value.as_str())
    }

    /// The value of `key`, which may be absent but not repeated.
    ///
    /// # Errors
    /// [`Problem::RepeatedHeader`].
    pub fn optional(&self, key: &str) -> Result<Option<&str>, VectorError> {
        Ok(self.at_most_one(key)?.map(|header| header.value.as_str()))
    }

    /// The value of `key` (exactly once), parsed as a `T`.
    ///
    /// # Errors
    /// As [`Vector::get`], or [`Problem::Unparsable`] with `T`'s reason.
    pub fn value<T>(&self, key: &str) -> Result<T, VectorError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let header = self.one(key)?;
        header.value.parse().map_err(|error: T::Err| {
            self.error(
                header.line,
                Problem::Unparsable {
                    key: key.to_owned(),
                    reason: error.to_string(),
                },
            )
        })
    }

    fn decode_hex(&self, header: &Header) -> Result<Vec<u8>, VectorError> {
        hex::decode(&header.value).map_err(|error| {
            self.error(
                header.line,
                Problem::Unparsable {
                    key: header.key.clone(),
                    reason: format!("not hex: {error}"),
                },
            )
        })
    }

    /// The value of `key` (exactly once), decoded from hex.
    ///
    /// # Errors
    /// As [`Vector::get`], or [`Problem::Unparsable`].
    pub fn hex_value(&self, key: &str) -> Result<Vec<u8>, VectorError> {
        self.decode_hex(self.one(key)?)
    }

    /// The value of `key` (exactly once), decoded from hex into exactly `N`
    /// bytes.
    ///
    /// # Errors
    /// As [`Vector::hex_value`], or [`Problem::WrongLength`].
    pub fn hex_array<const N: usize>(&self, key: &str) -> Result<[u8; N], VectorError> {
        let header = self.one(key)?;
        let bytes = self.decode_hex(header)?;
        let got = bytes.len();
        bytes.try_into().map_err(|_| {
            self.error(
                header.line,
                Problem::WrongLength {
                    key: key.to_owned(),
                    expected: N,
                    got,
                },
            )
        })
    }

    /// Every value of `key`, in order, decoded from hex.
    ///
    /// # Errors
    /// [`Problem::Unparsable`] for the first value that is not hex.
    pub fn hex_all(&self, key: &str) -> Result<Vec<Vec<u8>>, VectorError> {
        self.headers
            .iter()
            .filter(|header| header.key == key)
            .map(|header| self.decode_hex(header))
            .collect()
    }

    /// The body.
    #[must_use]
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    /// The body of a text format.
    ///
    /// # Errors
    /// [`Problem::BodyNotUtf8`].
    pub fn body_text(&self) -> Result<&str, VectorError> {
        std::str::from_utf8(&self.body).map_err(|_| self.error(0, Problem::BodyNotUtf8))
    }
}

/// Every `.vec` file directly in `dir`, parsed, in file-name order.
/// Subdirectories and hidden files (a generator's temporary file) are
/// skipped; any other file is an error, so a stray `.txt` vector cannot go
/// unread.
///
/// # Errors
/// The first [`VectorError`]: the directory cannot be read, a file is not a
/// `.vec` file, or one does not parse.
pub fn read_dir(dir: &Path) -> Result<Vec<Vector>, VectorError> {
    let io = |error: std::io::Error| VectorError {
        file: dir.display().to_string(),
        line: None,
        problem: Problem::Io(error.to_string()),
    };
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !hidden && !entry.file_type().map_err(io)?.is_dir() {
            paths.push(entry.path());
        }
    }
    paths.sort();
    paths.iter().map(|path| Vector::read(path)).collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn parse(text: &[u8]) -> Result<Vector, VectorError> {
        Vector::parse("t.vec", text)
    }

    #[test]
    fn reads_headers_in_order_and_the_body_raw() {
        let v = parse(b"expect: ok\nshare: 01\ncomment: a: b\nshare: 02\n\nbody\n\nmore").unwrap();
        assert_eq!(v.expect(), "ok");
        assert_eq!(v.all("share").collect::<Vec<_>>(), ["01", "02"]);
        assert_eq!(v.hex_all("share").unwrap(), [vec![1], vec![2]]);
        assert_eq!(v.comments().collect::<Vec<_>>(), ["a: b"]);
        assert_eq!(v.body_bytes(), b"body\n\nmore");
        assert_eq!(v.name(), "t");
        assert_eq!(
            v.to_bytes().unwrap(),
            b"expect: ok\nshare: 01\ncomment: a: b\nshare: 02\n\nbody\n\nmore"
        );
    }

    #[test]
    fn an_empty_body_still_needs_the_empty_line() {
        assert_eq!(parse(b"expect: ok\n\n").unwrap().body_bytes(), b"");
        let error = parse(b"expect: ok\n").unwrap_err();
        assert_eq!(error.problem, Problem::UnterminatedHeader);
        assert_eq!(error.to_string(), "t.vec:2: no empty line ends the header");
    }

    #[test]
    fn errors_name_file_line_and_problem() {
        let cases: [(&[u8], usize, Problem); 8] = [
            (b"expect: ok\nno colon\n\n", 2, Problem::NotAHeaderLine),
            (
                b"expect: ok\nKey: x\n\n",
                2,
                Problem::InvalidKey("Key".into()),
            ),
            (
                b"expect: ok\nkey_x: x\n\n",
                2,
                Problem::InvalidKey("key_x".into()),
            ),
            (
                b"expect: ok\na:  x\n\n",
                2,
                Problem::InvalidValue {
                    key: "a".into(),
                    reason: "white space around the value",
                },
            ),
            (
                b"expect: ok\r\n\n",
                1,
                Problem::InvalidValue {
                    key: "expect".into(),
                    reason: "a control character in the value",
                },
            ),
            (
                b"a: 1\nexpect: ok\nexpect: no\n\n",
                3,
                Problem::RepeatedHeader("expect".into()),
            ),
            (b"expect: ok\n\xff: 1\n\n", 2, Problem::NotUtf8),
            (b"a: b\nc: d", 2, Problem::UnterminatedHeader),
        ];
        for (text, line, problem) in cases {
            let error = parse(text).unwrap_err();
            assert_eq!(
                (error.line, &error.problem),
                (Some(line), &problem),
                "{text:?}"
            );
            assert!(error.to_string().starts_with(&format!("t.vec:{line}: ")));
        }
        let missing = parse(b"a: 1\n\n").unwrap_err();
        assert_eq!(
            (missing.line, missing.problem),
            (None, Problem::MissingHeader("expect".into()))
        );
    }

    #[test]
    fn typed_accessors_report_the_header_line() {
        let v = parse(b"expect: ok\nt: 3\nkey: 0a0b\nbad: zz\nn: x\n\n").unwrap();
        assert_eq!(v.value::<u8>("t").unwrap(), 3);
        assert_eq!(v.hex_array::<2>("key").unwrap(), [10, 11]);
        assert_eq!(v.optional("absent").unwrap(), None);
        let error = v.hex_array::<3>("key").unwrap_err();
        assert_eq!(
            error.to_string(),
            "t.vec:3: header `key`: 2 bytes, expected 3"
        );
        assert_eq!(v.hex_value("bad").unwrap_err().line, Some(4));
        assert_eq!(
            v.value::<u8>("n").unwrap_err().to_string(),
            "t.vec:5: header `n`: invalid digit found in string"
        );
        assert_eq!(
            v.get("absent").unwrap_err().to_string(),
            "t.vec: no `absent` header"
        );
    }

    #[test]
    fn the_writer_refuses_what_the_reader_refuses() {
        assert!(Vector::new("ok").header("a", "x\ny").to_bytes().is_err());
        assert!(Vector::new("ok").header("A", "x").to_bytes().is_err());
        assert!(Vector::new("ok").header("a", "").to_bytes().is_err());
        assert!(Vector::new("ok").header("expect", "no").to_bytes().is_err());
        let v = Vector::new("ok").header("b", 1).set("b", 2).set("c", 3);
        assert_eq!(v.to_bytes().unwrap(), b"expect: ok\nb: 2\nc: 3\n\n");
    }

    #[test]
    fn read_dir_refuses_files_of_another_extension() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.vec"), b"expect: ok\n\nB").unwrap();
        std::fs::write(dir.path().join("a.vec"), b"expect: ok\n\nA").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join(".a.vec.tmp"), b"partial").unwrap();
        let read = read_dir(dir.path()).unwrap();
        assert_eq!(
            read.iter().map(Vector::name).collect::<Vec<_>>(),
            ["a", "b"]
        );
        std::fs::write(dir.path().join("c.txt"), b"expect: ok\n\n").unwrap();
        assert_eq!(
            read_dir(dir.path()).unwrap_err().problem,
            Problem::NotAVectorFile
        );
    }

    fn key() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9-]{0,12}"
    }

    fn value() -> impl Strategy<Value = String> {
        // Printable, no surrounding white space, `": "` allowed inside.
        "[!-~]([ -~]{0,30}[!-~])?"
    }

    proptest! {
        #[test]
        fn written_vectors_read_back_identically(
            expect in value(),
            headers in proptest::collection::vec((key(), value()), 0..8),
            body in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut built = Vector::new(&expect);
            for (k, v) in &headers {
                let k = if k == EXPECT { "not-expect" } else { k.as_str() };
                built = built.header(k, v);
            }
            let built = built.body(body.clone());
            let bytes = built.to_bytes().unwrap();
            let read = Vector::parse("p.vec", &bytes).unwrap();
            prop_assert_eq!(read.expect(), expect.as_str());
            prop_assert_eq!(read.headers().collect::<Vec<_>>(), built.headers().collect::<Vec<_>>());
            prop_assert_eq!(read.body_bytes(), body.as_slice());
            prop_assert_eq!(read.to_bytes().unwrap(), bytes);
        }

        #[test]
        fn any_bytes_parse_or_fail_with_a_line(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            match Vector::parse("p.vec", &bytes) {
                Ok(vector) => prop_assert_eq!(vector.to_bytes().unwrap(), bytes),
                Err(error) => {
                    let lines = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
                    prop_assert!(
                        error.line.is_none_or(|line| (1..=lines).contains(&line)),
                        "{error}"
                    );
                }
            }
        }

        #[test]
        fn a_bad_line_is_reported_where_it_is(
            before in proptest::collection::vec((key(), value()), 0..6),
            bad in "[A-Z ]{1,10}",
        ) {
            let mut text = String::from("expect: ok\n");
            for (k, v) in &before {
                text.push_str(&format!("{k}: {v}\n"));
            }
            text.push_str(&bad);
            text.push_str("\n\n");
            let error = Vector::parse("p.vec", text.as_bytes()).unwrap_err();
            prop_assert_eq!(error.line, Some(before.len() + 2));
        }
    }
}
