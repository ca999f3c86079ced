//! Another node's sidecar in its own process, for tests that must not hold
//! more than one party's secret in the test process: the test starts a
//! peer program (such as keydata's `self_test_peer` example) per party and
//! exchanges opaque request and answer bytes with it over the child's
//! stdin and stdout.
//!
//! [`PeerProcesses`] addresses one such process per party; [`serve`] is the
//! peer program's side, answering until its stdin ends.
//!
//! Frames: a request is a `u32` big-endian length and the request bytes; an
//! answer is a status byte ([`ANSWERED`] or [`REFUSED`]), a `u32`
//! big-endian length and the bytes (the answer, or the refusal's text).
//! Frames are at most [`MAX_FRAME_LEN`] bytes.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::io::{self, BufReader, BufWriter, Read, Write};
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
    /// [`PeerProcesses`] has no process for the party asked (hex of its
    /// id).
    #[error("no peer process for party {0}")]
    NoProcessForParty(String),
    /// [`PeerProcesses::spawn_each`] was given two processes for one party
    /// (hex of its id).
    #[error("two peer processes for party {0}")]
    DuplicateParty(String),
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

/// The peer program's side: reads request frames from this process's stdin
/// until it ends, and writes `answer`'s answer to each on stdout, or the
/// text of its refusal (`Display`: it must name what is wrong with the
/// request, never a secret).
///
/// # Errors
/// An I/O error, a request over the cap or cut short, or an answer over the
/// cap.
pub fn serve<E: fmt::Display>(answer: impl FnMut(&[u8]) -> Result<Vec<u8>, E>) -> io::Result<()> {
    let mut input = BufReader::new(io::stdin().lock());
    let mut output = BufWriter::new(io::stdout().lock());
    serve_streams(&mut input, &mut output, answer)
}

fn serve_streams<E: fmt::Display>(
    input: &mut impl Read,
    output: &mut impl Write,
    mut answer: impl FnMut(&[u8]) -> Result<Vec<u8>, E>,
) -> io::Result<()> {
    while let Some(request) = read_request(input)? {
        match answer(&request) {
            Ok(bytes) => write_answer(output, Ok(&bytes))?,
            Err(refusal) => write_answer(output, Err(&refusal.to_string()))?,
        }
    }
    Ok(())
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
        S: AsRef<OsStr>,
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

/// Peer processes addressed by their party's id (for the self-test, its
/// `ShareID` bytes): one exchange goes to the one process of the party
/// asked. Dropping it ends every process, as [`PeerProcess`]'s drop does.
#[derive(Debug, Default)]
pub struct PeerProcesses {
    processes: BTreeMap<Vec<u8>, PeerProcess>,
}

impl PeerProcesses {
    /// Starts one process per `(party id, program, args)` item.
    ///
    /// # Errors
    /// [`PeerProcessError::Io`] when a process does not start,
    /// [`PeerProcessError::DuplicateParty`] for a party named twice (the
    /// processes already started are ended).
    pub fn spawn_each<I, P, A, S>(peers: I) -> Result<Self, PeerProcessError>
    where
        I: IntoIterator<Item = (Vec<u8>, P, A)>,
        P: AsRef<Path>,
        A: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut processes = BTreeMap::new();
        for (party_id, program, args) in peers {
            if processes.contains_key(&party_id) {
                return Err(PeerProcessError::DuplicateParty(hex::encode(&party_id)));
            }
            let process = PeerProcess::spawn(program.as_ref(), args)?;
            processes.insert(party_id, process);
        }
        Ok(Self { processes })
    }

    /// The parties that have a process, in byte order.
    pub fn party_ids(&self) -> impl Iterator<Item = &[u8]> {
        self.processes.keys().map(Vec::as_slice)
    }

    /// Sends `request` to the process of `party_id` and reads its answer.
    ///
    /// # Errors
    /// [`PeerProcessError::NoProcessForParty`] when no process has that
    /// id; otherwise as [`PeerProcess::exchange`].
    pub fn exchange(
        &mut self,
        party_id: &[u8],
        request: &[u8],
    ) -> Result<Vec<u8>, PeerProcessError> {
        self.processes
            .get_mut(party_id)
            .ok_or_else(|| PeerProcessError::NoProcessForParty(hex::encode(party_id)))?
            .exchange(request)
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
    fn serving_answers_each_request_and_sends_refusals_as_text() {
        let mut wire = Vec::new();
        for request in [b"ok".as_slice(), b"bad", b""] {
            write_len(&mut wire, request.len()).unwrap();
            wire.extend_from_slice(request);
        }
        let mut seen = Vec::new();
        let mut answers = Vec::new();
        serve_streams(&mut wire.as_slice(), &mut answers, |request: &[u8]| {
            seen.push(request.to_vec());
            match request {
                b"bad" => Err("refused: bad request"),
                _ => Ok([b"re:", request].concat()),
            }
        })
        .unwrap();
        assert_eq!(seen, [b"ok".to_vec(), b"bad".to_vec(), Vec::new()]);
        let mut expected = Vec::new();
        write_answer(&mut expected, Ok(b"re:ok")).unwrap();
        write_answer(&mut expected, Err("refused: bad request")).unwrap();
        write_answer(&mut expected, Ok(b"re:")).unwrap();
        assert_eq!(answers, expected);

        // A request cut short ends the loop with an error, unanswered: the
        // first frame whole, the second's length and one of its three bytes.
        let mut answers = Vec::new();
        let cut = &wire[..(4 + 2) + 4 + 1];
        let result = serve_streams(&mut &cut[..], &mut answers, |_: &[u8]| {
            Ok::<_, String>(Vec::new())
        });
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        let mut expected = Vec::new();
        write_answer(&mut expected, Ok(b"")).unwrap();
        assert_eq!(answers, expected, "one answer, to the first request only");
    }

    /// A stand-in peer program, `sh`: it reads one one-byte request frame
    /// (five bytes), writes `answer` as an answer frame, then waits for the
    /// end of its input. (The real peers are examples of other crates.)
    #[cfg(unix)]
    fn canned_peer(answer: &[u8]) -> (PathBuf, Vec<String>) {
        let mut frame = Vec::new();
        write_answer(&mut frame, Ok(answer)).unwrap();
        let octal: String = frame.iter().map(|b| format!("\\{b:03o}")).collect();
        let script = format!("head -c 5 >/dev/null; printf '{octal}'; cat >/dev/null");
        (PathBuf::from("/bin/sh"), vec!["-c".to_owned(), script])
    }

    #[cfg(unix)]
    #[test]
    fn processes_are_addressed_by_party_and_a_missing_one_is_typed() {
        let (program_a, args_a) = canned_peer(b"from a");
        let (program_b, args_b) = canned_peer(b"from b");
        let mut peers = PeerProcesses::spawn_each([
            (vec![0xa], program_a, args_a),
            (vec![0xb], program_b, args_b),
        ])
        .unwrap();
        assert_eq!(peers.party_ids().collect::<Vec<_>>(), [[0xa], [0xb]]);
        assert_eq!(peers.exchange(&[0xb], b"x").unwrap(), b"from b");
        assert_eq!(peers.exchange(&[0xa], b"y").unwrap(), b"from a");
        assert!(matches!(
            peers.exchange(&[0xc], b"z"),
            Err(PeerProcessError::NoProcessForParty(id)) if id == "0c"
        ));
    }

    #[cfg(unix)]
    #[test]
    fn a_party_named_twice_is_refused() {
        let (program, args) = canned_peer(b"");
        let twice = PeerProcesses::spawn_each([
            (vec![1], program.clone(), args.clone()),
            (vec![1], program, args),
        ]);
        assert!(matches!(
            twice,
            Err(PeerProcessError::DuplicateParty(id)) if id == "01"
        ));
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
