//! Golden vectors: `tests/data/{pass,fail}/`, one `.vec` file per case (the
//! bytes under test as the body, the expected outcome and every input as
//! headers).
//!
//! Every vector is regenerated here from its stored inputs (a seeded
//! `ChaCha20Rng`, fixed keys) and compared byte for byte with the file, and
//! the stored bytes are decoded with the expected outcome. A format change
//! fails this test. To rewrite the files after a deliberate change,
//! regenerate every vector of the workspace:
//! `SHARDKEEP_REGENERATE_VECTORS=1 cargo test --workspace --all-features -- golden`.
//!
//! Fail vectors are built through the real encoder ([`HeaderFields`],
//! [`finish`]) with one defect each, and re-signed where the defect must get
//! past the signature to reach its rule.
//!
//! Containers are age files: age draws its own randomness, so the container
//! vectors are decode-only; their decrypted contents are still regenerated
//! and compared byte for byte.

use std::path::PathBuf;
use std::sync::Mutex;

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use rand_core::Rng;
use shardkeep_sss_core::{
    Commitments, Curve, CurveId, Ed25519, Secp256k1, Secret, Share, ShareIndex, Threshold, split,
};
use shardkeep_test_support::{
    GoldenDir, Vector, data_dir, read_dir, regenerating, write_atomically,
};
use shardkeep_wire::{put_prefixed_u8, put_prefixed_u16, put_prefixed_u32};
use zeroize::Zeroizing;

use crate::aead;
use crate::binding::{Binding, archive_hash};
use crate::container::{Armor, ContainerIdentity, ContainerRecipients, OpenedContainer};
use crate::envelope::ENVELOPE_VERSION;
use crate::envelope::{
    CurveShare, EncodedEnvelope, EnvelopeParams, HeaderFields, PayloadKind, VerifiedEnvelope,
    finish,
};
use crate::error::Error;
use crate::fixtures::{
    FUZZ_AGE_IDENTITY, FUZZ_CUSTODIAN_ID, FUZZ_CUSTODIAN_SEED, FUZZ_SIGNER_ID, FUZZ_SIGNER_SEED,
};
use crate::frame::SealedEnvelopeFrame;
use crate::receipt::{
    CustodianSet, FailureReason, RECEIPT_SIGNATURE_TAG, Receipt, ReceiptStatus, VerifiedReceipt,
};
use crate::trust::{TrustedSigners, sign_tagged};
use crate::{encode_container_contents, open_container, seal_container};
use shardkeep_types::{
    CustodianId, KekId, KeyId, KeyVersion, NodeId, NodeVersion, ShareSlot, SignerId, Timestamp,
};
use shardkeep_types::{DataKey, InMemoryKek, InMemorySigner, KeyEncryptionKey, Signer, WrappedKey};

const KEK_ID: &str = "kek-slot-1";
const KEK_KEY: [u8; 32] = [0x4b; 32];
const ROGUE_SEED: [u8; 32] = [9; 32];
/// The envelope signing key's seed when format v1 was current: the
/// `fail/v1_*` vectors are the v1 pass vectors of then, byte for byte.
const V1_SIGNER_SEED: [u8; 32] = [7; 32];
const ARCHIVE: &[u8] = b"shardkeep golden-vector stand-in for a sealed protocol archive";
const KEY_ID: &str = "key-0001";
const NODE_ID: &str = "node-a";
const VERSION: u32 = 3;
/// Envelope `created_at`, in seconds since the Unix epoch: 2025-11-24T16:00:00Z.
const CREATED_AT: u64 = 1_764_000_000;
/// One hour, in the wire unit of timestamps (milliseconds).
const ONE_HOUR: u64 = 3_600_000;
const PARTY_ID: [u8; 3] = [0x01, 0x5e, 0xa7];
const CUSTODIAN_INDEX: u8 = 4;

fn vectors_dir() -> PathBuf {
    data_dir(env!("CARGO_MANIFEST_DIR"), "")
}

/// One golden case: its name, whether it passes, its inputs and expected
/// outcome as `key: value` lines, and its bytes.
struct Golden {
    name: String,
    pass: bool,
    lines: Vec<(&'static str, String)>,
    bytes: Vec<u8>,
}

impl Golden {
    /// `pass/<name>` or `fail/<name>`.
    fn relative(&self) -> String {
        format!("{}/{}", if self.pass { "pass" } else { "fail" }, self.name)
    }

    /// The vector file: `expect` and the description (as the `comment`)
    /// first, then the other lines in order (keys in kebab case, empty
    /// values left out), the bytes as the body.
    fn render(&self) -> Vector {
        let line = |key: &str| {
            self.lines
                .iter()
                .find(|(k, _)| *k == key)
                .map_or("", |(_, value)| value.as_str())
        };
        let mut vector = Vector::new(line("expect")).comment(line("description"));
        for (key, value) in &self.lines {
            if !matches!(*key, "expect" | "description") && !value.is_empty() {
                vector = vector.header(&key.replace('_', "-"), value);
            }
        }
        vector.body(self.bytes.clone())
    }
}

/// The error's variant name, nested one level for share, custody,
/// container, framing and vocabulary detail: `Share::IndexOutOfRange`,
/// `Framing::BadMagic`.
fn variant_name(error: &Error) -> String {
    let debug = format!("{error:?}");
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let outer = ident(&debug);
    match outer.as_str() {
        "Share" | "Custody" | "Container" | "Framing" | "Types" => {
            format!("{outer}::{}", ident(&debug[outer.len() + 1..]))
        }
        _ => outer,
    }
}

/// A KEK that wraps exactly like [`InMemoryKek`] but draws its nonces from
/// a seeded generator, so sealed vectors are reproducible. The stored
/// vectors open with an `InMemoryKek` holding the same key, bound to the
/// same slot.
struct SeededKek {
    inner: InMemoryKek,
    rng: Mutex<ChaCha20Rng>,
}

impl core::fmt::Debug for SeededKek {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SeededKek")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl KeyEncryptionKey for SeededKek {
    fn kek_id(&self) -> &KekId {
        self.inner.kek_id()
    }

    fn slot(&self) -> Option<&ShareSlot> {
        self.inner.slot()
    }

    fn wrap(&self, data_key: &DataKey) -> Result<WrappedKey, shardkeep_types::CustodyError> {
        let mut nonce = [0u8; 12];
        self.rng.lock().unwrap().fill_bytes(&mut nonce);
        self.inner.wrap_with_nonce(data_key, nonce)
    }

    fn unwrap(&self, wrapped: &WrappedKey) -> Result<DataKey, shardkeep_types::CustodyError> {
        self.inner.unwrap(wrapped)
    }
}

/// The share slot of share `index` of the vectors' key version.
fn slot(index: u8) -> ShareSlot {
    ShareSlot {
        key_id: KeyId::new(KEY_ID).unwrap(),
        node_id: NodeId::new(NODE_ID).unwrap(),
        version: KeyVersion::new(VERSION),
        index: ShareIndex::new(index).unwrap(),
    }
}

/// The vectors' KEK (one key), dedicated to share `index`'s slot.
fn seeded_kek(seed: u8, index: u8) -> SeededKek {
    SeededKek {
        inner: InMemoryKek::from_bytes_for_slot(KekId::new(KEK_ID).unwrap(), slot(index), &KEK_KEY),
        rng: Mutex::new(ChaCha20Rng::from_seed([seed ^ 0xff; 32])),
    }
}

fn signer() -> InMemorySigner {
    InMemorySigner::from_seed(SignerId::new(FUZZ_SIGNER_ID).unwrap(), &FUZZ_SIGNER_SEED)
}

fn trusted() -> TrustedSigners {
    let mut trust = TrustedSigners::new();
    trust.add_signer(&signer()).unwrap();
    trust
}

/// A 3-of-5 split and the envelope parameters, all from one seed.
struct Fixture<C: Curve> {
    seed: u8,
    params: EnvelopeParams,
    commitments: Commitments<C>,
    shares: Vec<Share<C>>,
    rng: ChaCha20Rng,
}

fn fixture<C: Curve>(seed: u8) -> Fixture<C> {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let secret = Secret::<C>::random(&mut rng);
    let (commitments, shares) = split(&secret, Threshold::new(3, 5).unwrap(), &mut rng)
        .unwrap()
        .into_parts();
    let mut group_public_key = Vec::new();
    C::encode_point(
        &Secret::<C>::random(&mut rng).public_point(),
        &mut group_public_key,
    );
    let binding = Binding::new(
        C::ID,
        group_public_key,
        PARTY_ID.to_vec(),
        commitments.to_bytes()[..C::POINT_LEN].to_vec(),
        archive_hash(ARCHIVE),
    )
    .unwrap();
    Fixture {
        seed,
        params: EnvelopeParams {
            node_version: NodeVersion {
                key_id: KeyId::new(KEY_ID).unwrap(),
                node_id: NodeId::new(NODE_ID).unwrap(),
                version: KeyVersion::new(VERSION),
            },
            created_at: Timestamp::from_unix_seconds(CREATED_AT).unwrap(),
            binding,
        },
        commitments,
        shares,
        rng,
    }
}

/// Owned header wire values, to be broken one field at a time.
#[derive(Clone)]
struct Fields {
    format_version: u8,
    key_id: Vec<u8>,
    node_id: Vec<u8>,
    curve: u8,
    key_version: u32,
    index: u8,
    t: u8,
    n: u8,
    split_id: [u8; 32],
    created_at: u64,
    commitment_count: u8,
    commitments: Vec<u8>,
    group_public_key: Vec<u8>,
    party_id: Vec<u8>,
    public_share: Vec<u8>,
    archive_hash: [u8; 32],
    payload_kind: u8,
}

impl Fields {
    fn of<C: Curve>(fx: &Fixture<C>, index: u8, kind: PayloadKind) -> Self {
        let b = &fx.params.binding;
        Self {
            format_version: ENVELOPE_VERSION,
            key_id: KEY_ID.into(),
            node_id: NODE_ID.into(),
            curve: C::ID.to_u8(),
            key_version: VERSION,
            index,
            t: 3,
            n: 5,
            split_id: *fx.commitments.split_id().as_bytes(),
            created_at: CREATED_AT,
            commitment_count: 3,
            commitments: fx.commitments.to_bytes(),
            group_public_key: b.group_public_key().to_vec(),
            party_id: b.party_id().to_vec(),
            public_share: b.public_share().to_vec(),
            archive_hash: *b.archive_hash(),
            payload_kind: kind.to_u8(),
        }
    }

    fn header(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::new());
        HeaderFields {
            format_version: self.format_version,
            key_id: &self.key_id,
            node_id: &self.node_id,
            curve: self.curve,
            key_version: self.key_version,
            index: self.index,
            t: self.t,
            n: self.n,
            split_id: self.split_id,
            created_at: self.created_at,
            commitment_count: self.commitment_count,
            commitments: &self.commitments,
            group_public_key: &self.group_public_key,
            party_id: &self.party_id,
            public_share: &self.public_share,
            archive_hash: self.archive_hash,
            payload_kind: self.payload_kind,
        }
        .encode(&mut out)
        .unwrap();
        out
    }

    /// A plain envelope with this header and `value`, signed by `signer`.
    fn plain(&self, value: &[u8], signer: &dyn Signer) -> Vec<u8> {
        let mut bytes = self.header();
        bytes.extend_from_slice(value);
        self.finish(bytes, PayloadKind::Plain, signer, None)
    }

    /// The trailer of this header's format version: version 1's
    /// ([`finish_v1`]) for version 1, the crate's ([`finish`]) otherwise.
    fn finish(
        &self,
        bytes: Zeroizing<Vec<u8>>,
        kind: PayloadKind,
        signer: &dyn Signer,
        wrap: Option<(&KekId, &WrappedKey)>,
    ) -> Vec<u8> {
        if self.format_version == 1 {
            finish_v1(bytes, signer, wrap)
        } else {
            finish(bytes, kind, signer, wrap)
                .unwrap()
                .into_bytes()
                .to_vec()
        }
    }

    /// A sealed envelope with this header; `value` is sealed with `aad`
    /// (this header unless given).
    fn sealed<C: Curve>(
        &self,
        fx: &mut Fixture<C>,
        value: &[u8],
        aad: Option<&[u8]>,
        kek: &dyn KeyEncryptionKey,
    ) -> Vec<u8> {
        self.sealed_by(fx, value, aad, kek, &signer())
    }

    /// As [`Fields::sealed`], signed by `signer`.
    fn sealed_by<C: Curve>(
        &self,
        fx: &mut Fixture<C>,
        value: &[u8],
        aad: Option<&[u8]>,
        kek: &dyn KeyEncryptionKey,
        signer: &dyn Signer,
    ) -> Vec<u8> {
        let mut bytes = self.header();
        let data_key = DataKey::generate(&mut fx.rng);
        let mut nonce = [0u8; 12];
        fx.rng.fill_bytes(&mut nonce);
        let ciphertext = aead::seal(&data_key, &nonce, aad.unwrap_or(&bytes), value).unwrap();
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&ciphertext);
        let wrapped = kek.wrap(&data_key).unwrap();
        self.finish(
            bytes,
            PayloadKind::Sealed,
            signer,
            Some((kek.kek_id(), &wrapped)),
        )
    }
}

/// The trailer of envelope format v1, which this build refuses: checksum,
/// signer id and signature after the header and payload, the signature
/// (and checksum and id) over header and payload only, so the signer id
/// was not signed.
fn finish_v1(
    mut bytes: Zeroizing<Vec<u8>>,
    signer: &dyn Signer,
    wrap: Option<(&KekId, &WrappedKey)>,
) -> Vec<u8> {
    let checksum = crate::envelope::tagged_hash(crate::ENVELOPE_CHECKSUM_TAG, &bytes);
    let signature = sign_tagged(signer, crate::ENVELOPE_SIGNATURE_TAG, &bytes).unwrap();
    bytes.extend_from_slice(&checksum);
    signer.signer_id().encode_prefixed(&mut bytes);
    bytes.extend_from_slice(&signature);
    if let Some((kek_id, wrapped)) = wrap {
        kek_id.encode_prefixed(&mut bytes);
        put_prefixed_u16(&mut bytes, "wrapped_key", wrapped.as_bytes(), usize::MAX).unwrap();
    }
    bytes.to_vec()
}

fn envelope_lines<C: Curve>(
    fx: &Fixture<C>,
    index: u8,
    expect: String,
    description: &str,
) -> Vec<(&'static str, String)> {
    let share_value = fx
        .shares
        .get(usize::from(index).wrapping_sub(1))
        .map_or_else(String::new, |s| hex::encode(s.value_be_bytes().as_slice()));
    vec![
        ("kind", "envelope".into()),
        ("expect", expect),
        ("description", description.into()),
        ("curve", C::ID.name().into()),
        ("rng_seed", hex::encode([fx.seed; 32])),
        ("threshold", "3-of-5".into()),
        ("index", index.to_string()),
        ("key_id", KEY_ID.into()),
        ("node_id", NODE_ID.into()),
        ("version", VERSION.to_string()),
        ("created_at", CREATED_AT.to_string()),
        ("party_id", hex::encode(PARTY_ID)),
        ("archive", hex::encode(ARCHIVE)),
        ("signer_id", FUZZ_SIGNER_ID.into()),
        ("signer_seed", hex::encode(FUZZ_SIGNER_SEED)),
        (
            "signer_public",
            hex::encode(signer().verifying_key().as_bytes()),
        ),
        ("kek_id", KEK_ID.into()),
        ("kek_key", hex::encode(KEK_KEY)),
        ("kek_slot", format!("{KEY_ID}/{NODE_ID}/v{VERSION}/{index}")),
        ("share_value", share_value),
    ]
}

fn vector(name: &str, pass: bool, lines: Vec<(&'static str, String)>, bytes: Vec<u8>) -> Golden {
    Golden {
        name: name.into(),
        pass,
        lines,
        bytes,
    }
}

/// The pass envelopes on curve `C`, through the public API.
fn pass_envelopes<C: Curve>(seed: u8, out: &mut Vec<Golden>) {
    let curve = C::ID.name();
    let mut fx = fixture::<C>(seed);
    let plain = fx
        .params
        .plain(&fx.commitments, &fx.shares[3], &signer())
        .unwrap();
    // The hand-assembled path used for fail vectors writes the same bytes.
    assert_eq!(
        Fields::of(&fx, 4, PayloadKind::Plain).plain(&fx.shares[3].value_be_bytes()[..], &signer()),
        plain.as_bytes()
    );
    let mut lines = envelope_lines(&fx, 4, "ok".into(), "custodian envelope, share 4");
    lines.push(("envelope_id", plain.id().to_string()));
    out.push(vector(
        &format!("plain_{curve}"),
        true,
        lines,
        plain.as_bytes().to_vec(),
    ));

    let kek = seeded_kek(seed, 1);
    let sealed = fx
        .params
        .seal(&fx.commitments, &fx.shares[0], &signer(), &kek, &mut fx.rng)
        .unwrap();
    let mut lines = envelope_lines(&fx, 1, "ok".into(), "server envelope, share 1");
    lines.push(("envelope_id", sealed.id().to_string()));
    out.push(vector(
        &format!("sealed_{curve}"),
        true,
        lines,
        sealed.as_bytes().to_vec(),
    ));
}

/// Builds one fail envelope on secp256k1 (seed 1): the defect is applied to
/// the wire fields, and the result re-signed.
fn fail_envelope(
    out: &mut Vec<Golden>,
    name: &str,
    expect: &str,
    description: &str,
    build: impl FnOnce(&mut Fixture<Secp256k1>) -> Vec<u8>,
) {
    fail_envelope_at(out, 4, name, expect, description, build);
}

/// As [`fail_envelope`], for an envelope whose header names share `index`.
fn fail_envelope_at(
    out: &mut Vec<Golden>,
    index: u8,
    name: &str,
    expect: &str,
    description: &str,
    build: impl FnOnce(&mut Fixture<Secp256k1>) -> Vec<u8>,
) {
    let mut fx = fixture::<Secp256k1>(1);
    let bytes = build(&mut fx);
    let lines = envelope_lines(&fx, index, expect.into(), description);
    out.push(vector(name, false, lines, bytes));
}

fn plain_with(fx: &Fixture<Secp256k1>, edit: impl FnOnce(&mut Fields)) -> Vec<u8> {
    let mut fields = Fields::of(fx, 4, PayloadKind::Plain);
    edit(&mut fields);
    fields.plain(&fx.shares[3].value_be_bytes()[..], &signer())
}

/// Offset of the checksum (= length of the signed bytes) of a well-formed
/// envelope, from its structural parse.
fn signed_len(bytes: &[u8]) -> usize {
    crate::envelope::RawEnvelope::parse(bytes)
        .unwrap()
        .signed
        .len()
}

#[allow(clippy::too_many_lines)] // One entry per rejection rule, in the order decode_verify checks them.
fn fail_envelopes(out: &mut Vec<Golden>) {
    let d = "decode_error";
    fail_envelope(
        out,
        "envelope_too_large",
        &format!("{d} Framing::TooLarge"),
        "a valid envelope padded past the 16 KiB cap",
        |fx| {
            let mut bytes = plain_with(fx, |_| {});
            bytes.resize(crate::envelope::MAX_ENVELOPE_LEN + 1, 0);
            bytes
        },
    );
    fail_envelope(
        out,
        "bad_magic",
        &format!("{d} Framing::BadMagic"),
        "first magic byte changed",
        |fx| {
            let mut bytes = plain_with(fx, |_| {});
            bytes[0] ^= 0x20;
            bytes
        },
    );
    fail_envelope(
        out,
        "unsupported_version",
        &format!("{d} Framing::UnsupportedVersion"),
        "format version 3",
        |fx| plain_with(fx, |f| f.format_version = 3),
    );
    fail_envelope(
        out,
        "truncated",
        &format!("{d} Framing::Truncated"),
        "last 10 bytes (of the signature) cut",
        |fx| {
            let mut bytes = plain_with(fx, |_| {});
            bytes.truncate(bytes.len() - 10);
            bytes
        },
    );
    fail_envelope(
        out,
        "trailing_data",
        &format!("{d} Framing::TrailingBytes"),
        "one byte appended",
        |fx| {
            let mut bytes = plain_with(fx, |_| {});
            bytes.push(0);
            bytes
        },
    );
    fail_envelope(
        out,
        "key_id_over_cap",
        &format!("{d} Framing::LengthOutOfRange"),
        "key_id of 65 bytes",
        |fx| plain_with(fx, |f| f.key_id = vec![b'k'; 65]),
    );
    fail_envelope(
        out,
        "key_id_bad_byte",
        &format!("{d} Types::InvalidName"),
        "key_id with a '/'",
        |fx| plain_with(fx, |f| f.key_id = b"key/0001".to_vec()),
    );
    fail_envelope(
        out,
        "node_id_empty",
        &format!("{d} Framing::LengthOutOfRange"),
        "empty node_id",
        |fx| plain_with(fx, |f| f.node_id = Vec::new()),
    );
    fail_envelope(
        out,
        "unknown_curve",
        &format!("{d} UnknownCurve"),
        "curve byte 3",
        |fx| plain_with(fx, |f| f.curve = 3),
    );
    fail_envelope(
        out,
        "created_at_out_of_range",
        &format!("{d} Types::TimestampOutOfRange"),
        "created_at of 2^63 s, above i64::MAX ms",
        |fx| plain_with(fx, |f| f.created_at = 1 << 63),
    );
    fail_envelope(
        out,
        "party_id_over_cap",
        &format!("{d} Framing::LengthOutOfRange"),
        "party id of 65 bytes",
        |fx| plain_with(fx, |f| f.party_id = vec![1; 65]),
    );
    fail_envelope(
        out,
        "unknown_payload_kind",
        &format!("{d} UnknownPayloadKind"),
        "payload kind 3",
        |fx| plain_with(fx, |f| f.payload_kind = 3),
    );
    fail_envelope(
        out,
        "signer_id_bad_byte",
        &format!("{d} Types::InvalidName"),
        "signer id byte replaced by a space",
        |fx| {
            let mut bytes = plain_with(fx, |_| {});
            // The signer id ends the signed bytes.
            let at = signed_len(&bytes) - FUZZ_SIGNER_ID.len();
            bytes[at] = b' ';
            bytes
        },
    );
    fail_envelope_at(
        out,
        1,
        "wrapped_key_over_cap",
        &format!("{d} Framing::LengthOutOfRange"),
        "sealed envelope whose wrapped key declares 513 bytes",
        |fx| {
            let fields = Fields::of(fx, 1, PayloadKind::Sealed);
            let value = fx.shares[0].value_be_bytes();
            let bytes = fields.sealed(fx, &value[..], None, &seeded_kek(1, 1));
            let raw = crate::envelope::RawEnvelope::parse(&bytes).unwrap();
            let trailer = 1 + KEK_ID.len() + 2 + raw.wrap.as_ref().unwrap().1.as_bytes().len();
            let mut bytes = bytes[..bytes.len() - trailer].to_vec();
            put_prefixed_u8(&mut bytes, "kek_id", KEK_ID.as_bytes(), usize::MAX).unwrap();
            put_prefixed_u16(&mut bytes, "wrapped_key", &[0x5a; 513], usize::MAX).unwrap();
            bytes
        },
    );
    fail_envelope(
        out,
        "checksum_mismatch",
        &format!("{d} ChecksumMismatch"),
        "one bit of created_at flipped after signing",
        |fx| {
            let mut bytes = plain_with(fx, |_| {});
            let created_at = 8 + 1 + 1 + KEY_ID.len() + 1 + NODE_ID.len() + 1 + 4 + 3 + 32;
            bytes[created_at + 7] ^= 1;
            bytes
        },
    );
    fail_envelope(
        out,
        "untrusted_signer",
        &format!("{d} UntrustedSigner"),
        "signed by 'rogue-signer', not in the trusted set",
        |fx| {
            let rogue =
                InMemorySigner::from_seed(SignerId::new("rogue-signer").unwrap(), &ROGUE_SEED);
            Fields::of(fx, 4, PayloadKind::Plain).plain(&fx.shares[3].value_be_bytes()[..], &rogue)
        },
    );
    fail_envelope(
        out,
        "signature_wrong_key",
        &format!("{d} BadSignature"),
        "signed as server-signer-1 with another key",
        |fx| {
            let impostor =
                InMemorySigner::from_seed(SignerId::new(FUZZ_SIGNER_ID).unwrap(), &ROGUE_SEED);
            Fields::of(fx, 4, PayloadKind::Plain)
                .plain(&fx.shares[3].value_be_bytes()[..], &impostor)
        },
    );
    fail_envelope(
        out,
        "signature_bit_flip",
        &format!("{d} BadSignature"),
        "last signature bit flipped",
        |fx| {
            let mut bytes = plain_with(fx, |_| {});
            let last = bytes.len() - 1;
            bytes[last] ^= 0x01;
            bytes
        },
    );
    fail_envelope(
        out,
        "threshold_t_above_n",
        &format!("{d} Share::InvalidThreshold"),
        "t = 6 > n = 5",
        |fx| plain_with(fx, |f| f.t = 6),
    );
    fail_envelope(
        out,
        "threshold_t_one",
        &format!("{d} Share::InvalidThreshold"),
        "t = 1",
        |fx| plain_with(fx, |f| f.t = 1),
    );
    fail_envelope(
        out,
        "index_zero",
        &format!("{d} Share::IndexOutOfRange"),
        "share index 0",
        |fx| plain_with(fx, |f| f.index = 0),
    );
    fail_envelope(
        out,
        "index_above_n",
        &format!("{d} Share::IndexOutOfRange"),
        "share index 6 of 5",
        |fx| plain_with(fx, |f| f.index = 6),
    );
    fail_envelope(
        out,
        "commitment_count_mismatch",
        &format!("{d} Share::CommitmentCount"),
        "two commitments for t = 3",
        |fx| {
            plain_with(fx, |f| {
                f.commitment_count = 2;
                f.commitments.truncate(2 * 33);
            })
        },
    );
    fail_envelope(
        out,
        "commitment_invalid_point",
        &format!("{d} Share::InvalidPoint"),
        "C2 with x > p",
        |fx| {
            plain_with(fx, |f| {
                f.commitments[66] = 0x02;
                f.commitments[67..99].fill(0xff);
            })
        },
    );
    fail_envelope(
        out,
        "split_id_mismatch",
        &format!("{d} Share::SplitIdMismatch"),
        "one split_id bit flipped",
        |fx| plain_with(fx, |f| f.split_id[0] ^= 1),
    );
    fail_envelope(
        out,
        "group_key_invalid_point",
        &format!("{d} Share::InvalidPoint"),
        "group public key with prefix 0x05",
        |fx| plain_with(fx, |f| f.group_public_key[0] = 0x05),
    );
    fail_envelope(
        out,
        "party_id_non_canonical",
        &format!("{d} NonCanonicalPartyId"),
        "party id with a leading zero byte",
        |fx| plain_with(fx, |f| f.party_id.insert(0, 0)),
    );
    fail_envelope(
        out,
        "public_share_mismatch",
        &format!("{d} PublicShareMismatch"),
        "bound public share is the group key, not C0",
        |fx| plain_with(fx, |f| f.public_share = f.group_public_key.clone()),
    );
    fail_envelope(
        out,
        "plain_value_non_canonical",
        &format!("{d} Share::NonCanonicalScalar"),
        "share value 0xff..ff (above the order)",
        |fx| Fields::of(fx, 4, PayloadKind::Plain).plain(&[0xff; 32], &signer()),
    );
    fail_envelope(
        out,
        "plain_value_zero",
        &format!("{d} Share::ZeroScalar"),
        "share value zero",
        |fx| Fields::of(fx, 4, PayloadKind::Plain).plain(&[0; 32], &signer()),
    );
    fail_envelope(
        out,
        "plain_feldman_fail",
        &format!("{d} Share::ShareVerification"),
        "share 5's value in share 4's envelope",
        |fx| {
            Fields::of(fx, 4, PayloadKind::Plain)
                .plain(&fx.shares[4].value_be_bytes()[..], &signer())
        },
    );

    let o = "open_error";
    fail_envelope_at(
        out,
        2,
        "sealed_moved_to_other_slot",
        &format!("{o} DecryptionFailed"),
        "share 1 sealed under share 2's header (AAD), signed as share 2",
        |fx| {
            let original = Fields::of(fx, 1, PayloadKind::Sealed).header();
            let moved = Fields::of(fx, 2, PayloadKind::Sealed);
            let value = fx.shares[0].value_be_bytes();
            moved.sealed(fx, &value[..], Some(&original), &seeded_kek(1, 2))
        },
    );
    fail_envelope_at(
        out,
        1,
        "sealed_feldman_fail",
        &format!("{o} Share::ShareVerification"),
        "share 2's value sealed in share 1's envelope",
        |fx| {
            let fields = Fields::of(fx, 1, PayloadKind::Sealed);
            let value = fx.shares[1].value_be_bytes();
            fields.sealed(fx, &value[..], None, &seeded_kek(1, 1))
        },
    );
    fail_envelope_at(
        out,
        1,
        "sealed_kek_mismatch",
        &format!("{o} KekMismatch"),
        "data key wrapped by kek-slot-2; opened with kek-slot-1",
        |fx| {
            let other = SeededKek {
                inner: InMemoryKek::from_bytes_for_slot(
                    KekId::new("kek-slot-2").unwrap(),
                    slot(1),
                    &[0x4c; 32],
                ),
                rng: Mutex::new(ChaCha20Rng::from_seed([2; 32])),
            };
            let fields = Fields::of(fx, 1, PayloadKind::Sealed);
            let value = fx.shares[0].value_be_bytes();
            fields.sealed(fx, &value[..], None, &other)
        },
    );
    fail_envelope_at(
        out,
        1,
        "sealed_wrapped_key_tampered",
        &format!("{o} Custody::UnwrapFailed"),
        "last wrapped-key byte flipped (outside the signature)",
        |fx| {
            let fields = Fields::of(fx, 1, PayloadKind::Sealed);
            let value = fx.shares[0].value_be_bytes();
            let mut bytes = fields.sealed(fx, &value[..], None, &seeded_kek(1, 1));
            let last = bytes.len() - 1;
            bytes[last] ^= 0x80;
            bytes
        },
    );

    // ed25519-only point rules (seed 2).
    for (name, expect, description, point) in [
        (
            "ed25519_commitment_identity",
            "Share::IdentityPoint",
            "C1 is the identity",
            {
                let mut p = [0u8; 32];
                p[0] = 1;
                p
            },
        ),
        (
            "ed25519_commitment_torsion",
            "Share::TorsionPoint",
            "C1 plus an order-8 point",
            [0; 32],
        ),
    ] {
        let fx = fixture::<Ed25519>(2);
        let mut fields = Fields::of(&fx, 4, PayloadKind::Plain);
        let point = if name.ends_with("torsion") {
            torsion_shifted(&fields.commitments[32..64])
        } else {
            point
        };
        fields.commitments[32..64].copy_from_slice(&point);
        let bytes = fields.plain(&fx.shares[3].value_be_bytes()[..], &signer());
        let lines = envelope_lines(&fx, 4, format!("{d} {expect}"), description);
        out.push(vector(name, false, lines, bytes));
    }
}

/// `point + T` for an order-8 `T`: on the curve, canonical, mixed order.
fn torsion_shifted(point: &[u8]) -> [u8; 32] {
    use shardkeep_sss_core::curves::curve25519_dalek::edwards::CompressedEdwardsY;
    let t8: [u8; 32] =
        hex::decode("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
            .unwrap()
            .try_into()
            .unwrap();
    let p = CompressedEdwardsY(point.try_into().unwrap())
        .decompress()
        .unwrap();
    let t = CompressedEdwardsY(t8).decompress().unwrap();
    (p + t).compress().to_bytes()
}

fn custodian_signer() -> InMemorySigner {
    InMemorySigner::from_seed(
        SignerId::new(FUZZ_CUSTODIAN_ID).unwrap(),
        &FUZZ_CUSTODIAN_SEED,
    )
}

fn custodians() -> CustodianSet {
    let mut set = CustodianSet::new();
    set.insert(
        Threshold::new(3, 5)
            .unwrap()
            .share_index(CUSTODIAN_INDEX)
            .unwrap(),
        CustodianId::new(FUZZ_CUSTODIAN_ID).unwrap(),
        custodian_signer().verifying_key(),
    )
    .unwrap();
    set
}

/// Raw receipt wire values (test-side writer, checked against
/// [`Receipt::sign`] on the pass vectors).
struct ReceiptFields {
    magic: [u8; 8],
    version: u8,
    custodian_id: Vec<u8>,
    envelope_id: [u8; 32],
    status: u8,
    reason: Vec<u8>,
    timestamp: u64,
}

impl ReceiptFields {
    fn received(envelope_id: [u8; 32]) -> Self {
        Self {
            magic: *crate::RECEIPT_MAGIC,
            version: 1,
            custodian_id: FUZZ_CUSTODIAN_ID.into(),
            envelope_id,
            status: 1,
            reason: Vec::new(),
            timestamp: CREATED_AT * 1000 + ONE_HOUR,
        }
    }

    fn sign(&self, signer: &dyn Signer) -> Vec<u8> {
        let mut out = self.magic.to_vec();
        out.push(self.version);
        put_prefixed_u8(&mut out, "custodian_id", &self.custodian_id, usize::MAX).unwrap();
        out.extend_from_slice(&self.envelope_id);
        out.push(self.status);
        put_prefixed_u16(&mut out, "failure_reason", &self.reason, usize::MAX).unwrap();
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        let signature = sign_tagged(signer, RECEIPT_SIGNATURE_TAG, &out).unwrap();
        out.extend_from_slice(&signature);
        out
    }
}

fn receipt_lines(
    expect: &str,
    description: &str,
    envelope_id: &[u8; 32],
) -> Vec<(&'static str, String)> {
    vec![
        ("kind", "receipt".into()),
        ("expect", expect.into()),
        ("description", description.into()),
        ("custodian_id", FUZZ_CUSTODIAN_ID.into()),
        ("custodian_index", CUSTODIAN_INDEX.to_string()),
        ("custodian_seed", hex::encode(FUZZ_CUSTODIAN_SEED)),
        (
            "custodian_public",
            hex::encode(custodian_signer().verifying_key().as_bytes()),
        ),
        ("envelope_id", hex::encode(envelope_id)),
    ]
}

fn receipts(out: &mut Vec<Golden>) {
    // About the plain secp256k1 pass envelope.
    let fx = fixture::<Secp256k1>(1);
    let envelope_id = *fx
        .params
        .plain(&fx.commitments, &fx.shares[3], &signer())
        .unwrap()
        .id()
        .as_bytes();
    let base = ReceiptFields::received(envelope_id);

    let received = Receipt {
        custodian_id: CustodianId::new(FUZZ_CUSTODIAN_ID).unwrap(),
        envelope_id: shardkeep_types::EnvelopeId::from_bytes(envelope_id),
        status: ReceiptStatus::Received,
        timestamp: Timestamp::from_unix_millis(base.timestamp).unwrap(),
    };
    let bytes = received.sign(&custodian_signer()).unwrap();
    assert_eq!(bytes, base.sign(&custodian_signer()));
    out.push(vector(
        "receipt_received",
        true,
        receipt_lines("ok", "received", &envelope_id),
        bytes,
    ));

    let failed = Receipt {
        status: ReceiptStatus::Failed(
            FailureReason::new("container did not open: wrong identity").unwrap(),
        ),
        ..received.clone()
    };
    let bytes = failed.sign(&custodian_signer()).unwrap();
    out.push(vector(
        "receipt_failed",
        true,
        receipt_lines("ok", "failed with a reason", &envelope_id),
        bytes,
    ));

    let d = "decode_error";
    let cases: Vec<(&str, &str, &str, Vec<u8>)> = vec![
        (
            "receipt_too_large",
            "Framing::TooLarge",
            "a valid receipt padded past the cap",
            {
                let mut b = base.sign(&custodian_signer());
                b.resize(crate::MAX_RECEIPT_LEN + 1, 0);
                b
            },
        ),
        ("receipt_bad_magic", "Framing::BadMagic", "wrong magic", {
            let mut f = ReceiptFields::received(envelope_id);
            f.magic = *b"shkp-env";
            f.sign(&custodian_signer())
        }),
        (
            "receipt_unsupported_version",
            "Framing::UnsupportedVersion",
            "version 2",
            {
                let mut f = ReceiptFields::received(envelope_id);
                f.version = 2;
                f.sign(&custodian_signer())
            },
        ),
        (
            "receipt_truncated",
            "Framing::Truncated",
            "last byte cut",
            {
                let mut b = base.sign(&custodian_signer());
                b.pop();
                b
            },
        ),
        (
            "receipt_trailing_data",
            "Framing::TrailingBytes",
            "one byte appended",
            {
                let mut b = base.sign(&custodian_signer());
                b.push(0);
                b
            },
        ),
        (
            "receipt_custodian_id_bad_byte",
            "Types::InvalidName",
            "custodian id with a space",
            {
                let mut f = ReceiptFields::received(envelope_id);
                f.custodian_id = b"custodian a".to_vec();
                f.sign(&custodian_signer())
            },
        ),
        (
            "receipt_unknown_status",
            "UnknownReceiptStatus",
            "status byte 3",
            {
                let mut f = ReceiptFields::received(envelope_id);
                f.status = 3;
                f.sign(&custodian_signer())
            },
        ),
        (
            "receipt_received_with_reason",
            "NonCanonical",
            "received, with a reason",
            {
                let mut f = ReceiptFields::received(envelope_id);
                f.reason = b"ok".to_vec();
                f.sign(&custodian_signer())
            },
        ),
        (
            "receipt_failed_without_reason",
            "Types::FreeTextLength",
            "failed, empty reason",
            {
                let mut f = ReceiptFields::received(envelope_id);
                f.status = 2;
                f.sign(&custodian_signer())
            },
        ),
        (
            "receipt_reason_over_cap",
            "Framing::LengthOutOfRange",
            "failure reason of 257 bytes",
            {
                let mut f = ReceiptFields::received(envelope_id);
                f.status = 2;
                f.reason = vec![b'x'; 257];
                f.sign(&custodian_signer())
            },
        ),
        (
            "receipt_reason_control_character",
            "Types::FreeTextCharacter",
            "failure reason with a newline",
            {
                let mut f = ReceiptFields::received(envelope_id);
                f.status = 2;
                f.reason = b"lost\nforged line".to_vec();
                f.sign(&custodian_signer())
            },
        ),
        (
            "receipt_reason_format_character",
            "Types::FreeTextCharacter",
            "failure reason with a right-to-left override (U+202E, category Cf)",
            {
                let mut f = ReceiptFields::received(envelope_id);
                f.status = 2;
                f.reason = "lost \u{202e}deviecer".as_bytes().to_vec();
                f.sign(&custodian_signer())
            },
        ),
        (
            "receipt_reason_invalid_utf8",
            "Types::FreeTextCharacter",
            "failure reason not UTF-8",
            {
                let mut f = ReceiptFields::received(envelope_id);
                f.status = 2;
                f.reason = vec![0xc3, 0x28];
                f.sign(&custodian_signer())
            },
        ),
        (
            "receipt_timestamp_out_of_range",
            "Types::TimestampOutOfRange",
            "timestamp of 2^63 ms, above i64::MAX",
            {
                let mut f = ReceiptFields::received(envelope_id);
                f.timestamp = 1 << 63;
                f.sign(&custodian_signer())
            },
        ),
        (
            "receipt_unknown_custodian",
            "UnknownCustodian",
            "custodian-b is not in the set",
            {
                let mut f = ReceiptFields::received(envelope_id);
                f.custodian_id = b"custodian-b".to_vec();
                f.sign(&custodian_signer())
            },
        ),
        (
            "receipt_wrong_key",
            "BadSignature",
            "signed with a key other than custodian-a's",
            {
                let rogue = InMemorySigner::from_seed(SignerId::new("rogue").unwrap(), &ROGUE_SEED);
                base.sign(&rogue)
            },
        ),
        (
            "receipt_bit_flip",
            "BadSignature",
            "one timestamp bit flipped after signing",
            {
                let mut b = base.sign(&custodian_signer());
                let at = b.len() - 64 - 1;
                b[at] ^= 1;
                b
            },
        ),
    ];
    for (name, expect, description, bytes) in cases {
        out.push(vector(
            name,
            false,
            receipt_lines(&format!("{d} {expect}"), description, &envelope_id),
            bytes,
        ));
    }
}

fn contents_lines(expect: &str, description: &str) -> Vec<(&'static str, String)> {
    vec![
        ("kind", "container_contents".into()),
        ("expect", expect.into()),
        ("description", description.into()),
        (
            "envelope",
            "plain_secp256k1 (pass/plain_secp256k1.vec)".into(),
        ),
        ("archive", hex::encode(ARCHIVE)),
        ("signer_id", FUZZ_SIGNER_ID.into()),
        (
            "signer_public",
            hex::encode(signer().verifying_key().as_bytes()),
        ),
    ]
}

fn plain_envelope() -> EncodedEnvelope {
    let fx = fixture::<Secp256k1>(1);
    fx.params
        .plain(&fx.commitments, &fx.shares[3], &signer())
        .unwrap()
}

fn container_contents(out: &mut Vec<Golden>) {
    let envelope = plain_envelope();
    let contents = encode_container_contents(&envelope, ARCHIVE)
        .unwrap()
        .to_vec();
    out.push(vector(
        "container_contents",
        true,
        contents_lines("ok", "plain envelope and archive"),
        contents.clone(),
    ));

    let d = "decode_error";
    let sealed = {
        let mut fx = fixture::<Secp256k1>(1);
        let kek = seeded_kek(1, 1);
        fx.params
            .seal(&fx.commitments, &fx.shares[0], &signer(), &kek, &mut fx.rng)
            .unwrap()
    };
    let layout = |magic: &[u8], version: u8, envelope: &[u8], archive: &[u8]| {
        let mut b = magic.to_vec();
        b.push(version);
        put_prefixed_u16(&mut b, "envelope", envelope, usize::MAX).unwrap();
        put_prefixed_u32(&mut b, "archive", archive, usize::MAX).unwrap();
        b
    };
    assert_eq!(
        layout(crate::CONTAINER_MAGIC, 1, envelope.as_bytes(), ARCHIVE),
        contents
    );
    let cases: Vec<(&str, &str, &str, Vec<u8>)> = vec![
        (
            "contents_bad_magic",
            "Framing::BadMagic",
            "wrong magic",
            layout(b"shkp-ctx", 1, envelope.as_bytes(), ARCHIVE),
        ),
        (
            "contents_unsupported_version",
            "Framing::UnsupportedVersion",
            "version 2",
            layout(crate::CONTAINER_MAGIC, 2, envelope.as_bytes(), ARCHIVE),
        ),
        (
            "contents_trailing_data",
            "Framing::TrailingBytes",
            "one byte appended",
            {
                let mut b = contents.clone();
                b.push(0);
                b
            },
        ),
        (
            "contents_truncated",
            "Framing::Truncated",
            "last archive byte cut",
            contents[..contents.len() - 1].to_vec(),
        ),
        (
            "contents_empty_archive",
            "Framing::LengthOutOfRange",
            "zero-length archive",
            layout(crate::CONTAINER_MAGIC, 1, envelope.as_bytes(), b""),
        ),
        (
            "contents_archive_mismatch",
            "ArchiveMismatch",
            "archive differs from the signed hash",
            layout(
                crate::CONTAINER_MAGIC,
                1,
                envelope.as_bytes(),
                b"another archive",
            ),
        ),
        (
            "contents_sealed_envelope",
            "WrongPayloadKind",
            "a server (sealed) envelope inside",
            layout(crate::CONTAINER_MAGIC, 1, sealed.as_bytes(), ARCHIVE),
        ),
    ];
    for (name, expect, description, bytes) in cases {
        out.push(vector(
            name,
            false,
            contents_lines(&format!("{d} {expect}"), description),
            bytes,
        ));
    }
}

/// The pass envelopes of `pass_envelopes`, in format v1 (signer id not
/// signed): refused since format v2 as an unsupported version. Same inputs,
/// same bytes as the v1 pass vectors were.
fn v1_envelopes<C: Curve>(seed: u8, out: &mut Vec<Golden>) {
    let curve = C::ID.name();
    let mut fx = fixture::<C>(seed);
    let expect = "decode_error Framing::UnsupportedVersion".to_owned();
    let v1_signer =
        InMemorySigner::from_seed(SignerId::new(FUZZ_SIGNER_ID).unwrap(), &V1_SIGNER_SEED);
    let with_v1_signer = |mut lines: Vec<(&'static str, String)>| {
        for (key, value) in &mut lines {
            match *key {
                "signer_seed" => *value = hex::encode(V1_SIGNER_SEED),
                "signer_public" => *value = hex::encode(v1_signer.verifying_key().as_bytes()),
                _ => {}
            }
        }
        lines
    };
    let mut fields = Fields::of(&fx, 4, PayloadKind::Plain);
    fields.format_version = 1;
    let plain = fields.plain(&fx.shares[3].value_be_bytes()[..], &v1_signer);
    let lines = with_v1_signer(envelope_lines(
        &fx,
        4,
        expect.clone(),
        "custodian envelope, share 4, format v1 (signer id outside the signature)",
    ));
    out.push(vector(&format!("v1_plain_{curve}"), false, lines, plain));

    let mut fields = Fields::of(&fx, 1, PayloadKind::Sealed);
    fields.format_version = 1;
    let value = fx.shares[0].value_be_bytes();
    let kek = seeded_kek(seed, 1);
    let sealed = fields.sealed_by(&mut fx, &value[..], None, &kek, &v1_signer);
    let lines = with_v1_signer(envelope_lines(
        &fx,
        1,
        expect,
        "server envelope, share 1, format v1 (signer id outside the signature)",
    ));
    out.push(vector(&format!("v1_sealed_{curve}"), false, lines, sealed));
}

/// Every deterministic vector.
fn all_vectors() -> Vec<Golden> {
    let mut out = Vec::new();
    pass_envelopes::<Secp256k1>(1, &mut out);
    pass_envelopes::<Ed25519>(2, &mut out);
    v1_envelopes::<Secp256k1>(1, &mut out);
    v1_envelopes::<Ed25519>(2, &mut out);
    fail_envelopes(&mut out);
    receipts(&mut out);
    container_contents(&mut out);
    out
}

/// The container vectors, kept by hand: age draws its own randomness, so
/// no generator reproduces their bytes. When regenerating, a container is
/// rewritten only if it is missing or no longer opens to today's contents.
const CONTAINERS: [(&str, Armor); 2] = [
    ("container_x25519", Armor::Binary),
    ("container_x25519_armored", Armor::Ascii),
];

fn container_vector(name: &str, armor: Armor) -> Vector {
    let identity: age::x25519::Identity = FUZZ_AGE_IDENTITY.parse().unwrap();
    let recipient = identity.to_public();
    let recipients = ContainerRecipients::x25519(vec![recipient.clone()]).unwrap();
    let bytes = seal_container(&plain_envelope(), ARCHIVE, &recipients, armor).unwrap();
    vector(
        name,
        true,
        vec![
            ("expect", "ok".into()),
            (
                "description",
                "age X25519 container of pass/container_contents.vec (kept by hand: age randomness)"
                    .into(),
            ),
            ("kind", "container".into()),
            ("armor", format!("{armor:?}")),
            ("identity", FUZZ_AGE_IDENTITY.into()),
            ("recipient", recipient.to_string()),
        ],
        bytes,
    )
    .render()
}

/// The contents a stored container opens to, if it opens.
fn container_plaintext(bytes: &[u8]) -> Option<Vec<u8>> {
    let identity: age::x25519::Identity = FUZZ_AGE_IDENTITY.parse().unwrap();
    let decryptor = age::Decryptor::new_buffered(age::armor::ArmoredReader::new(bytes)).ok()?;
    let mut plaintext = Vec::new();
    std::io::Read::read_to_end(
        &mut decryptor
            .decrypt(std::iter::once(&identity as &dyn age::Identity))
            .ok()?,
        &mut plaintext,
    )
    .ok()?;
    Some(plaintext)
}

/// Regenerates every vector (or compares it with its file), then runs every
/// check on the stored files, in one test so that no check reads a file
/// while it is rewritten.
#[test]
fn golden_vectors() {
    let vectors = all_vectors();
    let mut dir = GoldenDir::new(vectors_dir());
    for v in &vectors {
        dir.add(&v.relative(), &v.render());
    }
    let expected_contents = encode_container_contents(&plain_envelope(), ARCHIVE).unwrap();
    for (name, armor) in CONTAINERS {
        let path = vectors_dir().join(format!("pass/{name}.vec"));
        let opens = Vector::read(&path)
            .ok()
            .and_then(|stored| container_plaintext(stored.body_bytes()))
            .is_some_and(|plaintext| plaintext == expected_contents.as_slice());
        if regenerating() && !opens {
            write_atomically(&path, &container_vector(name, armor).to_bytes().unwrap()).unwrap();
        }
        dir.keep(&format!("pass/{name}"));
    }
    dir.finish().unwrap();

    let stored: Vec<Vector> = ["pass", "fail"]
        .into_iter()
        .flat_map(|kind| read_dir(&vectors_dir().join(kind)).unwrap())
        .collect();
    assert_eq!(stored.len(), vectors.len() + CONTAINERS.len());
    stored_vectors_decode_as_expected(&stored);
    stored_envelope_vectors_frame_as_expected(&stored);
    parsed_envelope_vectors_reencode_to_themselves(&stored);
    stored_container_vectors_open_with_the_stored_identity(&stored);
}

/// Decodes the body per the vector's kind; `Ok(())` or the error (after
/// decode, or after open for `open_error` vectors).
fn check_stored(v: &Vector) -> Result<(), (String, Error)> {
    let bytes = v.body_bytes();
    let mut trust = TrustedSigners::new();
    if let Some(public) = v.optional("signer-public").unwrap() {
        let key: [u8; 32] = hex::decode(public).unwrap().try_into().unwrap();
        trust
            .add(
                SignerId::new(v.get("signer-id").unwrap()).unwrap(),
                ed25519_dalek::VerifyingKey::from_bytes(&key).unwrap(),
            )
            .unwrap();
    }
    match v.get("kind").unwrap() {
        "envelope" => {
            let envelope = VerifiedEnvelope::decode_verify(bytes, &trust)
                .map_err(|e| ("decode_error".into(), e))?;
            if let Some(id) = v.optional("envelope-id").unwrap() {
                assert_eq!(envelope.id().to_string(), id);
            }
            let share = match envelope.payload_kind() {
                PayloadKind::Sealed => {
                    let slot = envelope.header().slot();
                    assert_eq!(slot.to_string(), v.get("kek-slot").unwrap());
                    let kek = InMemoryKek::from_bytes_for_slot(
                        KekId::new(v.get("kek-id").unwrap()).unwrap(),
                        slot,
                        &v.hex_array("kek-key").unwrap(),
                    );
                    envelope.open(&kek).map_err(|e| ("open_error".into(), e))?
                }
                PayloadKind::Plain => envelope.into_plain_share().unwrap(),
            };
            let value = match &share {
                CurveShare::Secp256k1(s) => hex::encode(s.value_be_bytes().as_slice()),
                CurveShare::Ed25519(s) => hex::encode(s.value_be_bytes().as_slice()),
            };
            assert_eq!(value, v.get("share-value").unwrap());
            Ok(())
        }
        "receipt" => VerifiedReceipt::decode_verify(bytes, &custodians())
            .map(drop)
            .map_err(|e| ("decode_error".into(), e)),
        "container_contents" => OpenedContainer::decode_verify(bytes, &trust)
            .map(drop)
            .map_err(|e| ("decode_error".into(), e)),
        other => panic!("unknown kind {other}"),
    }
}

fn stored_vectors_decode_as_expected(stored: &[Vector]) {
    let mut checked = 0;
    for v in stored {
        if v.get("kind").unwrap() == "container" {
            continue;
        }
        let expect = v.expect();
        match check_stored(v) {
            Ok(()) => assert_eq!(expect, "ok", "{}", v.file()),
            Err((stage, error)) => assert_eq!(
                expect,
                format!("{stage} {}", variant_name(&error)),
                "{}: {error:?}",
                v.file()
            ),
        }
        let in_pass = std::path::Path::new(v.file())
            .parent()
            .is_some_and(|dir| dir.ends_with("pass"));
        assert_eq!(in_pass, expect == "ok", "{}", v.file());
        checked += 1;
    }
    assert!(checked >= 60, "only {checked} vectors found");
}

/// Every stored envelope vector through [`SealedEnvelopeFrame::parse`]: a
/// structural refusal of `decode_verify` is the frame's refusal too, a
/// plain envelope is not a frame, and a sealed one that verifies has the
/// frame's id, slot, KEK id and wrapped key.
fn stored_envelope_vectors_frame_as_expected(stored: &[Vector]) {
    const STRUCTURAL: &[&str] = &[
        "Framing::TooLarge",
        "Framing::BadMagic",
        "Framing::UnsupportedVersion",
        "Framing::LengthOutOfRange",
        "Framing::Truncated",
        "Framing::TrailingBytes",
        "Types::InvalidName",
        "UnknownCurve",
        "Types::TimestampOutOfRange",
        "UnknownPayloadKind",
        "ChecksumMismatch",
    ];
    let mut framed = 0;
    for v in stored {
        if v.get("kind").unwrap() != "envelope" {
            continue;
        }
        let bytes = v.body_bytes();
        let frame = SealedEnvelopeFrame::parse(bytes);
        let expect = v.expect();
        let structural = expect
            .strip_prefix("decode_error ")
            .filter(|variant| STRUCTURAL.contains(variant));
        match (structural, &frame) {
            (Some(variant), Err(error)) => {
                assert_eq!(variant_name(error), variant, "{}", v.file());
            }
            (Some(_), Ok(_)) => panic!("{}: framed", v.file()),
            (None, Err(Error::WrongPayloadKind { .. })) => {}
            (None, Err(error)) => {
                // The index rule is part of the frame.
                assert!(
                    expect.ends_with("Share::InvalidThreshold")
                        || expect.ends_with("Share::IndexOutOfRange"),
                    "{}: {error:?}",
                    v.file()
                );
            }
            (None, Ok(frame)) => {
                framed += 1;
                if let Ok(verified) = VerifiedEnvelope::decode_verify(bytes, &trusted()) {
                    assert_eq!(frame.id(), verified.id());
                    assert_eq!(frame.slot(), verified.header().slot());
                    assert_eq!(Some(frame.kek_id()), verified.kek_id());
                    assert_eq!(Some(frame.wrapped_key()), verified.wrapped_key());
                }
            }
        }
    }
    assert!(framed >= 6, "only {framed} sealed vectors framed");
}

/// Every stored envelope that parses re-encodes to its own bytes (the
/// round trip the `envelope_decode` fuzz target asserts on any input).
fn parsed_envelope_vectors_reencode_to_themselves(stored: &[Vector]) {
    let mut parsed = 0;
    for v in stored {
        if v.get("kind").unwrap() != "envelope" {
            continue;
        }
        if let Ok(raw) = crate::envelope::RawEnvelope::parse(v.body_bytes()) {
            assert_eq!(raw.reencode().unwrap(), v.body_bytes(), "{}", v.file());
            parsed += 1;
        }
    }
    assert!(parsed >= 25, "only {parsed} envelope vectors parsed");
}

/// The age container vectors (decode-only: age draws its own randomness).
fn stored_container_vectors_open_with_the_stored_identity(stored: &[Vector]) {
    let identity: age::x25519::Identity = FUZZ_AGE_IDENTITY.parse().unwrap();
    let expected_contents = encode_container_contents(&plain_envelope(), ARCHIVE).unwrap();
    let containers: Vec<&Vector> = stored
        .iter()
        .filter(|v| v.get("kind").unwrap() == "container")
        .collect();
    assert_eq!(containers.len(), CONTAINERS.len());
    for v in containers {
        assert_eq!(v.get("identity").unwrap(), FUZZ_AGE_IDENTITY);
        // The decrypted contents are exactly today's encoding.
        assert_eq!(
            container_plaintext(v.body_bytes()).as_deref(),
            Some(expected_contents.as_slice()),
            "{}",
            v.file()
        );
        let opened = open_container(
            v.body_bytes(),
            ContainerIdentity::X25519(std::slice::from_ref(&identity)),
            &trusted(),
        )
        .unwrap();
        assert_eq!(opened.archive(), ARCHIVE);
        assert_eq!(opened.envelope().id(), plain_envelope().id());
    }
}

#[test]
fn raw_split_id_equals_the_commitments_split_id() {
    let fx = fixture::<Secp256k1>(1);
    let bytes = plain_envelope();
    let raw = crate::envelope::RawEnvelope::parse(bytes.as_bytes()).unwrap();
    assert_eq!(&raw.split_id, fx.commitments.split_id().as_bytes());
    let (header, _) = raw.validate().unwrap();
    assert_eq!(header.split_id(), fx.commitments.split_id());
    assert_eq!(header.curve(), CurveId::Secp256k1);
}
