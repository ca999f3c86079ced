//! Another node's sidecar in its own process, for tests that must not hold
//! more than one party's secret in the test process: the test starts a
//! peer program (such as keydata's `self_test_peer` example) per party and
//! exchanges opaque request and answer bytes with it over the child's
//! stdin and stdout.
//!
//! Frames: a request is a `u32` big-endian length and the request bytes; an
//! answer is a status byte ([`ANSWERED`] or [`REFUSED`]), a `u32`
//! big-endian length and the bytes (the answer, or the refusal's text).
//! Frames are at most [`MAX_FRAME_LEN`] bytes.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// Status byte of an answer.
pub const ANSWERED: u8 = 0;
/// Status byte of a refusal (the bytes are its UTF-8 text).
pub const REFUSED: u8 = 1;
/// Cap on a frame's bytes.
pub const MAX_FRAME_LEN: usize = 1 << 20;

/// Why an exchange with a peer process failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerProcessError {
    /// Starting the process, or reading or writing its pipes, failed.
    #[error("peer process: {0}")]
    Io(#[from] io::Error),
    /// The peer refused the request; its text.
    #[error("peer refused: {0}")]
    Refused(String),
    /// A frame over [`MAX_FRAME_LEN`], or a status byte that is neither
    /// [`ANSWERED`] nor [`REFUSED`].
    #[error("peer process sent a malformed frame")]
    MalformedFrame,
}

fn read_len(input: &mut impl Read) -> io::Result<Option<usize>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
    if len > MAX_FRAME_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame over the cap",
        ));
    }
    Ok(Some(len))
}

fn read_bytes(input: &mut impl Read, len: usize) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; len];
    input.read_exact(&mut bytes)?;
    Ok(bytes)
}

fn write_len(out: &mut impl Write, len: usize) -> io::Result<()> {
    let len = u32::try_from(len)
        .ok()
        .filter(|_| len <= MAX_FRAME_LEN)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame over the cap"))?;
    out.write_all(&len.to_be_bytes())
}

/// Reads one request frame (the peer's side); `None` when the input ends
/// before a frame starts.
///
/// # Errors
/// An I/O error, a frame over the cap, or a frame cut short.
pub fn read_request(input: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    match read_len(input)? {
        Some(len) => read_bytes(input, len).map(Some),
        None => Ok(None),
    }
}

/// Writes one answer frame (the peer's side) and flushes it: the answer
/// bytes, or the text of a refusal.
///
/// # Errors
/// An I/O error, or an answer over the cap.
pub fn write_answer(out: &mut impl Write, answer: Result<&[u8], &str>) -> io::Result<()> {
    let (status, bytes) = match answer {
        Ok(bytes) => (ANSWERED, bytes),
        Err(text) => (REFUSED, text.as_bytes()),
    };
    out.write_all(&[status])?;
    write_len(out, bytes.len())?;
    out.write_all(bytes)?;
    out.flush()
}

/// A peer program running as a child process, spoken to in frames.
/// Dropping it closes its stdin (the peer exits at the end of its input)
/// and waits for it.
#[derive(Debug)]
pub struct PeerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
}

impl PeerProcess {
    /// Starts `program` with `args`; its stderr is the test's.
    ///
    /// # Errors
    /// When the process does not start.
    pub fn spawn<I, S>(program: &Path, args: I) -> io::Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("child pipes missing"));
        };
        Ok(Self {
            child,
            stdin: Some(stdin),
            stdout,
        })
    }

    /// The child's process id.
    #[must_use]
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends one request and reads the peer's answer.
    ///
    /// # Errors
    /// [`PeerProcessError::Refused`] with the peer's text,
    /// [`PeerProcessError::MalformedFrame`], or an I/O error (the peer
    /// exited, a pipe broke).
    pub fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, PeerProcessError> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::BrokenPipe))?;
        write_len(stdin, request.len())?;
        stdin.write_all(request)?;
        stdin.flush()?;
        let mut status = [0u8; 1];
        self.stdout.read_exact(&mut status)?;
        let len = read_len(&mut self.stdout)?.ok_or(PeerProcessError::MalformedFrame)?;
        let bytes = read_bytes(&mut self.stdout, len)?;
        match status[0] {
            ANSWERED => Ok(bytes),
            REFUSED => Err(PeerProcessError::Refused(
                String::from_utf8_lossy(&bytes).into_owned(),
            )),
            _ => Err(PeerProcessError::MalformedFrame),
        }
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        // End of input: the peer exits; wait so no zombie is left behind.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// The path of example `name` of the package under test, built beside the
/// running test binary (`target/<profile>/examples/`; `cargo test` builds a
/// package's examples with its tests).
///
/// # Errors
/// When the running executable's path is unknown or the example is not
/// built (name it with `--example` when narrowing `cargo test`).
pub fn example_path(name: &str) -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // A test binary is target/<profile>/deps/<name>, an example
    // target/<profile>/examples/<name>.
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| io::Error::other("binary outside a target directory"))?;
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if path.is_file() {
        Ok(path)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "example {name} not built at {}: run cargo test with --example {name}",
                path.display()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_the_end_of_input_is_not_a_frame() {
        let mut wire = Vec::new();
        write_len(&mut wire, 3).unwrap();
        wire.extend_from_slice(b"abc");
        let mut input = wire.as_slice();
        assert_eq!(read_request(&mut input).unwrap().unwrap(), b"abc");
        assert!(read_request(&mut input).unwrap().is_none());

        let mut answers = Vec::new();
        write_answer(&mut answers, Ok(b"xy")).unwrap();
        write_answer(&mut answers, Err("no")).unwrap();
        assert_eq!(
            answers,
            [0, 0, 0, 0, 2, b'x', b'y', 1, 0, 0, 0, 2, b'n', b'o']
        );
    }

    #[test]
    fn frames_over_the_cap_are_refused() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&u32::try_from(MAX_FRAME_LEN + 1).unwrap().to_be_bytes());
        assert_eq!(
            read_request(&mut wire.as_slice()).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        assert!(write_answer(&mut Vec::new(), Ok(&vec![0; MAX_FRAME_LEN + 1])).is_err());
    }
}
