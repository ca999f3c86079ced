//! Interop with the real `age` command-line tool (Debian package `age`):
//! custodians open containers without shardkeep, and containers made by
//! `age` open in shardkeep. X25519 with and without armor both ways;
//! passphrases both ways under a pseudo-terminal (the age CLI reads
//! passphrases from the terminal only), driven by util-linux `script`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a failed unwrap is a failed test.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use age::secrecy::SecretString;
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_envelope::{
    Armor, Binding, ContainerIdentity, ContainerRecipients, EncodedEnvelope, EnvelopeParams,
    MAX_SCRYPT_WORK_FACTOR, OpenedContainer, TrustedSigners, archive_hash,
    encode_container_contents, open_container, seal_container,
};
use shardkeep_sss_core::{Curve, Secp256k1, Secret, Threshold, split};
use shardkeep_types::{
    InMemorySigner, KeyId, KeyVersion, NodeId, NodeVersion, SignerId, Timestamp,
};

mod common;
use common::{assert_not_opened_by, open_x25519, scrypt_work_factor};

const ARCHIVE: &[u8] = b"sealed protocol archive stand-in";
const PASSPHRASE: &str = "correct horse battery staple 42";

fn require(binary: &str) {
    let found = Command::new(binary)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "`{binary}` not found on PATH: install the Debian package that provides it \
         (`apt-get install age` for age/age-keygen, `bsdutils` for script)"
    );
}

fn run(command: &mut Command, stdin: &[u8]) -> std::process::Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs `age_args` under a pseudo-terminal, typing `typed` into it.
fn run_in_pty(age_args: &str, typed: &str) {
    require("script");
    run(
        Command::new("script").args(["-q", "-e", "-c", &format!("age {age_args}"), "/dev/null"]),
        typed.as_bytes(),
    );
}

/// Writes the container contents of `envelope` (the age plaintext) to
/// `contents.bin` in `dir`.
fn write_contents(dir: &Path, envelope: &EncodedEnvelope) -> PathBuf {
    let plain = dir.join("contents.bin");
    std::fs::write(
        &plain,
        encode_container_contents(envelope, ARCHIVE)
            .unwrap()
            .as_slice(),
    )
    .unwrap();
    plain
}

fn fixture() -> (EncodedEnvelope, TrustedSigners) {
    let mut rng = ChaCha20Rng::from_seed([5; 32]);
    let secret = Secret::<Secp256k1>::random(&mut rng);
    let (commitments, shares) = split(&secret, Threshold::new(3, 5).unwrap(), &mut rng)
        .unwrap()
        .into_parts();
    let mut group = Vec::new();
    Secp256k1::encode_point(
        &Secret::<Secp256k1>::random(&mut rng).public_point(),
        &mut group,
    );
    let params = EnvelopeParams {
        node_version: NodeVersion {
            key_id: KeyId::new("key-1").unwrap(),
            node_id: NodeId::new("node-1").unwrap(),
            version: KeyVersion::new(1),
        },
        created_at: Timestamp::from_unix_seconds(1_764_000_000).unwrap(),
        binding: Binding::new(
            Secp256k1::ID,
            group,
            vec![1],
            commitments.to_bytes()[..33].to_vec(),
            archive_hash(ARCHIVE),
        )
        .unwrap(),
    };
    let signer = InMemorySigner::generate(SignerId::new("server-1").unwrap(), &mut rng);
    let mut trusted = TrustedSigners::new();
    trusted.add_signer(&signer).unwrap();
    let envelope = params.plain(&commitments, &shares[3], &signer).unwrap();
    (envelope, trusted)
}

fn check_contents(contents: &[u8], envelope: &EncodedEnvelope, trusted: &TrustedSigners) {
    let opened = OpenedContainer::decode_verify(contents, trusted).unwrap();
    assert_eq!(opened.envelope().id(), envelope.id());
    assert_eq!(opened.archive(), ARCHIVE);
}

fn read_recipient(key_file: &Path) -> String {
    let text = std::fs::read_to_string(key_file).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_owned()
}

#[test]
fn age_cli_decrypts_shardkeep_x25519_containers() {
    require("age");
    require("age-keygen");
    let (envelope, trusted) = fixture();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("custodian.key");
    run(Command::new("age-keygen").arg("-o").arg(&key_file), b"");
    let recipient: age::x25519::Recipient = read_recipient(&key_file).parse().unwrap();
    let recipients = ContainerRecipients::x25519(vec![recipient]).unwrap();
    for armor in [Armor::Binary, Armor::Ascii] {
        let container = seal_container(&envelope, ARCHIVE, &recipients, armor).unwrap();
        assert_eq!(
            container.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"),
            armor == Armor::Ascii
        );
        let sealed = dir.path().join("share.age");
        let opened = dir.path().join("share.bin");
        std::fs::write(&sealed, &container).unwrap();
        run(
            Command::new("age")
                .arg("-d")
                .arg("-i")
                .arg(&key_file)
                .arg("-o")
                .arg(&opened)
                .arg(&sealed),
            b"",
        );
        check_contents(&std::fs::read(&opened).unwrap(), &envelope, &trusted);
    }
}

#[test]
fn shardkeep_opens_age_cli_x25519_containers() {
    require("age");
    let (envelope, trusted) = fixture();
    let identity = age::x25519::Identity::generate();
    let dir = tempfile::tempdir().unwrap();
    let plain = write_contents(dir.path(), &envelope);
    for armor in [false, true] {
        let sealed = dir.path().join("share.age");
        let mut command = Command::new("age");
        command.arg("-r").arg(identity.to_public().to_string());
        if armor {
            command.arg("-a");
        }
        run(command.arg("-o").arg(&sealed).arg(&plain), b"");
        let container = std::fs::read(&sealed).unwrap();
        assert_eq!(container.starts_with(b"-----BEGIN AGE"), armor);
        let opened = open_x25519(&container, &identity, &trusted).unwrap();
        assert_eq!(opened.envelope().id(), envelope.id());
        assert_eq!(opened.archive(), ARCHIVE);
        // Another identity does not open it.
        let stranger = age::x25519::Identity::generate();
        assert_not_opened_by(&container, &stranger, &trusted);
    }
}

#[test]
fn age_cli_decrypts_shardkeep_passphrase_containers_under_a_pty() {
    require("age");
    let (envelope, trusted) = fixture();
    let dir = tempfile::tempdir().unwrap();
    let recipients = ContainerRecipients::passphrase_with_work_factor(
        SecretString::from(PASSPHRASE.to_owned()),
        15,
    )
    .unwrap();
    let container = seal_container(&envelope, ARCHIVE, &recipients, Armor::Ascii).unwrap();
    let sealed = dir.path().join("share.age");
    let opened = dir.path().join("share.bin");
    std::fs::write(&sealed, &container).unwrap();
    run_in_pty(
        &format!("-d -o {} {}", opened.display(), sealed.display()),
        &format!("{PASSPHRASE}\n"),
    );
    check_contents(&std::fs::read(&opened).unwrap(), &envelope, &trusted);
}

#[test]
fn shardkeep_opens_age_cli_passphrase_containers_made_under_a_pty() {
    require("age");
    let (envelope, trusted) = fixture();
    let dir = tempfile::tempdir().unwrap();
    let plain = write_contents(dir.path(), &envelope);
    let sealed = dir.path().join("share.age");
    run_in_pty(
        &format!("-p -o {} {}", sealed.display(), plain.display()),
        &format!("{PASSPHRASE}\n{PASSPHRASE}\n"),
    );
    let container = std::fs::read(&sealed).unwrap();
    // What `age -p` writes is within the cap (it is the cap).
    assert!(scrypt_work_factor(&container) <= MAX_SCRYPT_WORK_FACTOR);
    let passphrase = SecretString::from(PASSPHRASE.to_owned());
    let opened = open_container(
        &container,
        ContainerIdentity::Passphrase(&passphrase),
        &trusted,
    )
    .unwrap();
    assert_eq!(opened.envelope().id(), envelope.id());
    let wrong = SecretString::from("not it".to_owned());
    assert!(open_container(&container, ContainerIdentity::Passphrase(&wrong), &trusted).is_err());
}
