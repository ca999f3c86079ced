//! tss-lib's `LocalPartySaveData`, ECDSA (secp256k1) and EdDSA (ed25519):
//! the typed model, its validation, and its JSON form.
//!
//! Every field is kept, including the difference between an absent field
//! (data written before tss-lib had it) and an explicit `null`, so that
//! writing a loaded save data gives back exactly what was read (compacted).

use core::fmt;

use crypto_bigint::BoxedUint;
use group::GroupEncoding;
use shardkeep_sss_core::{Curve, CurveId, Ed25519, PartyId, PartyIdSet, Secp256k1, Secret};
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

use crate::bigint::{INT_BITS, IntError, PublicInt, SecretInt, format_decimal, parse_decimal};
use crate::error::{Error, FieldError, Result};
use crate::json::{self, Value};
use crate::loaded::SecretHold;

/// JSON key of the secret share; the protocol archive is the save data
/// without it.
pub(crate) const XI_KEY: &str = "Xi";

/// A field that older tss-lib versions did not write: absent, written as
/// `null` (a nil pointer in Go), or present.
pub(crate) enum Optional<T> {
    Absent,
    Null,
    Present(T),
}

impl<T> Optional<T> {
    pub(crate) fn present(&self) -> Option<&T> {
        match self {
            Self::Present(v) => Some(v),
            Self::Absent | Self::Null => None,
        }
    }

    fn state(&self) -> u8 {
        match self {
            Self::Absent => 0,
            Self::Null => 1,
            Self::Present(_) => 2,
        }
    }
}

impl ConstantTimeEq for Optional<SecretInt> {
    fn ct_eq(&self, other: &Self) -> Choice {
        match (self, other) {
            (Self::Present(a), Self::Present(b)) => a.ct_eq(b),
            _ => Choice::from(u8::from(self.state() == other.state())),
        }
    }
}

/// An EC point as tss-lib stores it: affine coordinates, and a `"Curve"`
/// name that data written before 2021 lacks. Validated on the curve (and,
/// for ed25519, torsion-free) when parsed.
pub(crate) struct EcPoint<C: Curve> {
    pub(crate) point: C::Point,
    x: [u8; 32],
    y: [u8; 32],
    /// Whether the JSON named the curve (`"Curve"` present).
    named: bool,
}

impl<C: Curve> EcPoint<C> {
    pub(crate) fn compressed(&self) -> Vec<u8> {
        self.point.to_bytes().as_ref().to_vec()
    }

    fn same(&self, other: &Self) -> bool {
        self.x == other.x && self.y == other.y && self.named == other.named
    }
}

impl<C: Curve> fmt::Debug for EcPoint<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EcPoint").field(&self.point).finish()
    }
}

/// The part every tss-lib save data has: the secret share, the party ids,
/// the public shares and the group key.
pub(crate) struct KeyShare<C: Curve> {
    pub(crate) xi: Secret<C>,
    pub(crate) share_id: PublicInt,
    pub(crate) own: PartyId<C>,
    pub(crate) ks: Vec<PublicInt>,
    pub(crate) parties: PartyIdSet<C>,
    pub(crate) big_xj: Vec<EcPoint<C>>,
    pub(crate) group_key: EcPoint<C>,
}

impl<C: Curve> KeyShare<C> {
    /// This party's position in `Ks`, if `ShareID` is there.
    pub(crate) fn self_index(&self) -> Option<usize> {
        self.parties.position(&self.own)
    }

    fn ct_eq(&self, other: &Self) -> Choice {
        let public = self.share_id == other.share_id
            && self.ks == other.ks
            && self.big_xj.len() == other.big_xj.len()
            && self
                .big_xj
                .iter()
                .zip(&other.big_xj)
                .all(|(a, b)| a.same(b))
            && self.group_key.same(&other.group_key);
        Choice::from(u8::from(public)) & self.xi.ct_eq(&other.xi)
    }
}

/// tss-lib ECDSA's pre-parameters and per-party Paillier / Ñ data.
pub(crate) struct EcdsaExtra {
    pub(crate) paillier_n: PublicInt,
    pub(crate) lambda_n: SecretInt,
    pub(crate) phi_n: SecretInt,
    pub(crate) paillier_p: Optional<SecretInt>,
    pub(crate) paillier_q: Optional<SecretInt>,
    pub(crate) ntilde_i: PublicInt,
    pub(crate) h1i: PublicInt,
    pub(crate) h2i: PublicInt,
    pub(crate) alpha: Optional<SecretInt>,
    pub(crate) beta: Optional<SecretInt>,
    pub(crate) p: Optional<SecretInt>,
    pub(crate) q: Optional<SecretInt>,
    pub(crate) ntilde_j: Vec<PublicInt>,
    pub(crate) h1j: Vec<PublicInt>,
    pub(crate) h2j: Vec<PublicInt>,
    pub(crate) paillier_pks: Vec<PublicInt>,
}

impl EcdsaExtra {
    fn ct_eq(&self, other: &Self) -> Choice {
        let public = self.paillier_n == other.paillier_n
            && self.ntilde_i == other.ntilde_i
            && self.h1i == other.h1i
            && self.h2i == other.h2i
            && self.ntilde_j == other.ntilde_j
            && self.h1j == other.h1j
            && self.h2j == other.h2j
            && self.paillier_pks == other.paillier_pks;
        Choice::from(u8::from(public))
            & self.lambda_n.ct_eq(&other.lambda_n)
            & self.phi_n.ct_eq(&other.phi_n)
            & self.paillier_p.ct_eq(&other.paillier_p)
            & self.paillier_q.ct_eq(&other.paillier_q)
            & self.alpha.ct_eq(&other.alpha)
            & self.beta.ct_eq(&other.beta)
            & self.p.ct_eq(&other.p)
            & self.q.ct_eq(&other.q)
    }
}

pub(crate) enum Inner {
    Ecdsa(KeyShare<Secp256k1>, Box<EcdsaExtra>),
    Eddsa(KeyShare<Ed25519>),
}

/// One party's tss-lib keygen output (`LocalPartySaveData`), ECDSA on
/// secp256k1 or EdDSA on ed25519: the secret share `Xi`, the party ids, every
/// party's public share, the group public key and (ECDSA) the Paillier and
/// Ñ parameters.
///
/// Secret fields (`Xi`, the Paillier and Ñ primes, λ(N), φ(N), Alpha, Beta)
/// are wiped on drop; `Debug` prints public values only; equality is
/// [`ConstantTimeEq`]. No `Clone`.
pub struct LocalPartySaveData {
    pub(crate) inner: Inner,
    /// Counts this party in [`loaded_party_secrets`](crate::loaded_party_secrets)
    /// while the data lives.
    _hold: SecretHold,
}

impl LocalPartySaveData {
    /// Parses tss-lib's JSON (as `json.Marshal` writes it, in any
    /// whitespace). Read the bytes into a `Zeroizing<Vec<u8>>`: they hold
    /// the secret share.
    ///
    /// The protocol is recognised by its group key field (`ECDSAPub` or
    /// `EDDSAPub`). Every point is checked on its curve (ed25519 points also
    /// torsion-free); party ids are reduced modulo the group order and must
    /// be non-zero and distinct; every per-party array must have one entry
    /// per `Ks` entry; `Xi` must be in `[1, order)`. `Alpha`, `Beta`, `P`,
    /// `Q` (and `PaillierSK.P`/`.Q`) may be absent or `null`, as in data
    /// written by older tss-lib versions; a point without `"Curve"` is
    /// secp256k1, as in tss-lib. Member order is free; unknown and
    /// duplicate keys are refused.
    ///
    /// # Errors
    /// [`Error::Json`] for malformed JSON, [`Error::Field`] naming the
    /// field for a schema or value problem, [`Error::UnknownProtocol`].
    pub fn from_json(json: &[u8]) -> Result<Self> {
        Self::from_value(json::parse(json)?)
    }

    pub(crate) fn from_value(value: Value) -> Result<Self> {
        let mut top = Members::new(value, "")?;
        let inner = if top.has("ECDSAPub") {
            parse_ecdsa(&mut top)?
        } else if top.has("EDDSAPub") {
            Inner::Eddsa(parse_key_share(&mut top, "EDDSAPub")?)
        } else {
            return Err(Error::UnknownProtocol);
        };
        top.finish()?;
        let hold = match &inner {
            Inner::Ecdsa(key, _) => hold_of(key),
            Inner::Eddsa(key) => hold_of(key),
        };
        Ok(Self { inner, _hold: hold })
    }

    /// Writes the save data exactly as tss-lib's `json.Marshal` does:
    /// compact, fields in declaration order. Fields that were absent when
    /// read stay absent. The buffer is wiped on drop.
    #[must_use]
    pub fn to_json(&self) -> Zeroizing<Vec<u8>> {
        json::write(&self.to_value())
    }

    pub(crate) fn to_value(&self) -> Value {
        let mut out = Vec::new();
        match &self.inner {
            Inner::Ecdsa(key, extra) => {
                let mut sk = vec![("N".to_owned(), number(&extra.paillier_n))];
                sk.push(("LambdaN".to_owned(), secret(&extra.lambda_n)));
                sk.push(("PhiN".to_owned(), secret(&extra.phi_n)));
                push_optional(&mut sk, "P", &extra.paillier_p);
                push_optional(&mut sk, "Q", &extra.paillier_q);
                out.push(("PaillierSK".to_owned(), Value::Object(sk)));
                out.push(("NTildei".to_owned(), number(&extra.ntilde_i)));
                out.push(("H1i".to_owned(), number(&extra.h1i)));
                out.push(("H2i".to_owned(), number(&extra.h2i)));
                push_optional(&mut out, "Alpha", &extra.alpha);
                push_optional(&mut out, "Beta", &extra.beta);
                push_optional(&mut out, "P", &extra.p);
                push_optional(&mut out, "Q", &extra.q);
                push_secrets_and_ids(&mut out, key);
                out.push(("NTildej".to_owned(), numbers(&extra.ntilde_j)));
                out.push(("H1j".to_owned(), numbers(&extra.h1j)));
                out.push(("H2j".to_owned(), numbers(&extra.h2j)));
                out.push(("BigXj".to_owned(), points(&key.big_xj)));
                let pks = extra
                    .paillier_pks
                    .iter()
                    .map(|n| Value::Object(vec![("N".to_owned(), number(n))]))
                    .collect();
                out.push(("PaillierPKs".to_owned(), Value::Array(pks)));
                out.push(("ECDSAPub".to_owned(), point(&key.group_key)));
            }
            Inner::Eddsa(key) => {
                push_secrets_and_ids(&mut out, key);
                out.push(("BigXj".to_owned(), points(&key.big_xj)));
                out.push(("EDDSAPub".to_owned(), point(&key.group_key)));
            }
        }
        Value::Object(out)
    }

    /// The curve: secp256k1 for ECDSA, ed25519 for EdDSA.
    #[must_use]
    pub fn curve(&self) -> CurveId {
        match &self.inner {
            Inner::Ecdsa(..) => CurveId::Secp256k1,
            Inner::Eddsa(_) => CurveId::Ed25519,
        }
    }

    /// Number of parties (entries of `Ks`).
    #[must_use]
    pub fn party_count(&self) -> usize {
        match &self.inner {
            Inner::Ecdsa(key, _) => key.ks.len(),
            Inner::Eddsa(key) => key.ks.len(),
        }
    }

    /// This party's tss-lib `ShareID`, big-endian without leading zeros (as
    /// an envelope binding carries it).
    #[must_use]
    pub fn share_id(&self) -> &[u8] {
        match &self.inner {
            Inner::Ecdsa(key, _) => key.share_id.as_bytes(),
            Inner::Eddsa(key) => key.share_id.as_bytes(),
        }
    }

    /// This party's position in `Ks` (and in every per-party array).
    ///
    /// # Errors
    /// [`Error::ShareIdNotInKs`].
    pub fn self_index(&self) -> Result<usize> {
        match &self.inner {
            Inner::Ecdsa(key, _) => key.self_index(),
            Inner::Eddsa(key) => key.self_index(),
        }
        .ok_or(Error::ShareIdNotInKs)
    }

    /// The group public key (`ECDSAPub` / `EDDSAPub`), compressed (33-byte
    /// SEC1 or 32-byte RFC 8032).
    #[must_use]
    pub fn group_public_key(&self) -> Vec<u8> {
        match &self.inner {
            Inner::Ecdsa(key, _) => key.group_key.compressed(),
            Inner::Eddsa(key) => key.group_key.compressed(),
        }
    }

    /// This party's public share `BigXj[self]`, compressed.
    ///
    /// # Errors
    /// [`Error::ShareIdNotInKs`].
    pub fn public_share(&self) -> Result<Vec<u8>> {
        let index = self.self_index()?;
        Ok(match &self.inner {
            Inner::Ecdsa(key, _) => key.big_xj[index].compressed(),
            Inner::Eddsa(key) => key.big_xj[index].compressed(),
        })
    }

    /// A copy of the secret share `Xi` on curve `C`, to split it.
    ///
    /// ```
    /// # use shardkeep_keydata::LocalPartySaveData;
    /// # use shardkeep_sss_core::{Ed25519, Secp256k1};
    /// # let json = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"),
    /// #     "/tests/data/tss-lib/eddsa/keygen_data_0.json")).unwrap();
    /// let data = LocalPartySaveData::from_json(&json)?;
    /// let xi = data.secret_share::<Ed25519>()?;
    /// assert_eq!(xi.public_point().compress().as_bytes().as_slice(), data.public_share()?);
    /// assert!(data.secret_share::<Secp256k1>().is_err());
    /// # Ok::<(), shardkeep_keydata::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::CurveMismatch`] when `C` is not the save data's curve.
    pub fn secret_share<C: Curve>(&self) -> Result<Secret<C>> {
        if C::ID != self.curve() {
            return Err(Error::CurveMismatch {
                expected: self.curve(),
                got: C::ID,
            });
        }
        let bytes = match &self.inner {
            Inner::Ecdsa(key, _) => key.xi.to_be_bytes(),
            Inner::Eddsa(key) => key.xi.to_be_bytes(),
        };
        Ok(Secret::from_be_bytes(&bytes)?)
    }
}

fn hold_of<C: Curve>(key: &KeyShare<C>) -> SecretHold {
    SecretHold::new(
        C::ID.to_u8(),
        key.group_key.compressed(),
        key.share_id.as_bytes().to_vec(),
    )
}

impl ConstantTimeEq for LocalPartySaveData {
    fn ct_eq(&self, other: &Self) -> Choice {
        match (&self.inner, &other.inner) {
            (Inner::Ecdsa(a, ax), Inner::Ecdsa(b, bx)) => a.ct_eq(b) & ax.ct_eq(bx),
            (Inner::Eddsa(a), Inner::Eddsa(b)) => a.ct_eq(b),
            _ => Choice::from(0),
        }
    }
}

impl fmt::Debug for LocalPartySaveData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (protocol, ks, share_id) = match &self.inner {
            Inner::Ecdsa(key, _) => ("ECDSA", key.ks.len(), &key.share_id),
            Inner::Eddsa(key) => ("EdDSA", key.ks.len(), &key.share_id),
        };
        f.debug_struct("LocalPartySaveData")
            .field("protocol", &protocol)
            .field("parties", &ks)
            .field("share_id", share_id)
            .field(
                "group_public_key",
                &format_args!("{}", hex::encode(self.group_public_key())),
            )
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------- reading

/// The members of one JSON object, taken out one by one; whatever is left
/// at [`Members::finish`] is an unknown field.
struct Members {
    prefix: String,
    members: Vec<(String, Value)>,
}

impl Members {
    fn new(value: Value, path: &str) -> Result<Self> {
        match value {
            Value::Object(members) => Ok(Self {
                prefix: if path.is_empty() {
                    String::new()
                } else {
                    format!("{path}.")
                },
                members,
            }),
            other => Err(field_error(
                path_or_root(path),
                wrong_type("object", &other),
            )),
        }
    }

    fn path(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn has(&self, key: &str) -> bool {
        self.members.iter().any(|(k, _)| k == key)
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        let at = self.members.iter().position(|(k, _)| k == key)?;
        Some(self.members.remove(at).1)
    }

    fn required(&mut self, key: &str) -> Result<(Value, String)> {
        let path = self.path(key);
        match self.take(key) {
            Some(value) => Ok((value, path)),
            None => Err(field_error(path, FieldError::Missing)),
        }
    }

    fn public(&mut self, key: &str) -> Result<PublicInt> {
        let (value, path) = self.required(key)?;
        public_int(value, &path)
    }

    fn secret(&mut self, key: &str) -> Result<SecretInt> {
        let (value, path) = self.required(key)?;
        secret_int(value, &path)
    }

    fn optional_secret(&mut self, key: &str) -> Result<Optional<SecretInt>> {
        let path = self.path(key);
        match self.take(key) {
            None => Ok(Optional::Absent),
            Some(Value::Null) => Ok(Optional::Null),
            Some(value) => secret_int(value, &path).map(Optional::Present),
        }
    }

    fn array(&mut self, key: &str, parties: usize) -> Result<(Vec<Value>, String)> {
        let (value, path) = self.required(key)?;
        let items = array(value, &path)?;
        if items.len() != parties {
            return Err(field_error(
                path,
                FieldError::LengthMismatch {
                    expected: parties,
                    got: items.len(),
                },
            ));
        }
        Ok((items, path))
    }

    fn public_array(&mut self, key: &str, parties: usize) -> Result<Vec<PublicInt>> {
        let (items, path) = self.array(key, parties)?;
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| public_int(item, &format!("{path}[{i}]")))
            .collect()
    }

    fn finish(self) -> Result<()> {
        match self.members.into_iter().next() {
            None => Ok(()),
            Some((key, _)) => Err(field_error(
                format!("{}{key}", self.prefix),
                FieldError::Unknown,
            )),
        }
    }
}

fn path_or_root(path: &str) -> String {
    if path.is_empty() {
        "(top level)".to_owned()
    } else {
        path.to_owned()
    }
}

fn field_error(field: String, problem: FieldError) -> Error {
    Error::Field { field, problem }
}

fn wrong_type(expected: &'static str, found: &Value) -> FieldError {
    FieldError::WrongType {
        expected,
        found: found.type_name(),
    }
}

fn too_wide(_: IntError) -> FieldError {
    FieldError::TooWide { max_bits: INT_BITS }
}

fn public_int(value: Value, path: &str) -> Result<PublicInt> {
    match value {
        Value::Number(digits) => {
            PublicInt::from_digits(&digits).map_err(|e| field_error(path.to_owned(), too_wide(e)))
        }
        other => Err(field_error(path.to_owned(), wrong_type("number", &other))),
    }
}

fn secret_int(value: Value, path: &str) -> Result<SecretInt> {
    match value {
        Value::Number(digits) => {
            SecretInt::from_digits(&digits).map_err(|e| field_error(path.to_owned(), too_wide(e)))
        }
        other => Err(field_error(path.to_owned(), wrong_type("number", &other))),
    }
}

fn array(value: Value, path: &str) -> Result<Vec<Value>> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(field_error(path.to_owned(), wrong_type("array", &other))),
    }
}

fn parse_ecdsa(top: &mut Members) -> Result<Inner> {
    let (sk, sk_path) = top.required("PaillierSK")?;
    let mut sk = Members::new(sk, &sk_path)?;
    let paillier_n = sk.public("N")?;
    let lambda_n = sk.secret("LambdaN")?;
    let phi_n = sk.secret("PhiN")?;
    let paillier_p = sk.optional_secret("P")?;
    let paillier_q = sk.optional_secret("Q")?;
    sk.finish()?;

    let ntilde_i = top.public("NTildei")?;
    let h1i = top.public("H1i")?;
    let h2i = top.public("H2i")?;
    let alpha = top.optional_secret("Alpha")?;
    let beta = top.optional_secret("Beta")?;
    let p = top.optional_secret("P")?;
    let q = top.optional_secret("Q")?;
    let key = parse_key_share::<Secp256k1>(top, "ECDSAPub")?;
    let parties = key.ks.len();
    let ntilde_j = top.public_array("NTildej", parties)?;
    let h1j = top.public_array("H1j", parties)?;
    let h2j = top.public_array("H2j", parties)?;
    let (pks, pks_path) = top.array("PaillierPKs", parties)?;
    let paillier_pks = pks
        .into_iter()
        .enumerate()
        .map(|(i, pk)| {
            let mut pk = Members::new(pk, &format!("{pks_path}[{i}]"))?;
            let n = pk.public("N")?;
            pk.finish()?;
            Ok(n)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Inner::Ecdsa(
        key,
        Box::new(EcdsaExtra {
            paillier_n,
            lambda_n,
            phi_n,
            paillier_p,
            paillier_q,
            ntilde_i,
            h1i,
            h2i,
            alpha,
            beta,
            p,
            q,
            ntilde_j,
            h1j,
            h2j,
            paillier_pks,
        }),
    ))
}

/// `Xi`, `ShareID`, `Ks`, `BigXj` and the group key.
fn parse_key_share<C: Curve>(top: &mut Members, group_key_field: &str) -> Result<KeyShare<C>> {
    let (xi_value, xi_path) = top.required(XI_KEY)?;
    let xi = secret_share::<C>(xi_value, &xi_path)?;

    let (share_id_value, share_id_path) = top.required("ShareID")?;
    let share_id = public_int(share_id_value, &share_id_path)?;
    let own = PartyId::<C>::from_be_bytes(share_id.as_bytes())
        .map_err(|e| field_error(share_id_path, FieldError::PartyId(e)))?;

    let (ks_value, ks_path) = top.required("Ks")?;
    let ks_items = array(ks_value, &ks_path)?;
    if ks_items.is_empty() {
        return Err(field_error(ks_path, FieldError::Empty));
    }
    let ks = ks_items
        .into_iter()
        .enumerate()
        .map(|(i, item)| public_int(item, &format!("{ks_path}[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    let ids = ks
        .iter()
        .enumerate()
        .map(|(i, k)| {
            PartyId::<C>::from_be_bytes(k.as_bytes())
                .map_err(|e| field_error(format!("{ks_path}[{i}]"), FieldError::PartyId(e)))
        })
        .collect::<Result<Vec<_>>>()?;
    let parties = PartyIdSet::new(ids).map_err(|e| field_error(ks_path, FieldError::PartyId(e)))?;

    let (big_xj_items, big_xj_path) = top.array("BigXj", ks.len())?;
    let big_xj = big_xj_items
        .into_iter()
        .enumerate()
        .map(|(i, item)| parse_point::<C>(item, &format!("{big_xj_path}[{i}]")))
        .collect::<Result<Vec<_>>>()?;

    let (group_value, group_path) = top.required(group_key_field)?;
    let group_key = parse_point::<C>(group_value, &group_path)?;
    Ok(KeyShare {
        xi,
        share_id,
        own,
        ks,
        parties,
        big_xj,
        group_key,
    })
}

/// `Xi` straight into a wiped scalar: it must be in `[1, order)`.
fn secret_share<C: Curve>(value: Value, path: &str) -> Result<Secret<C>> {
    let Value::Number(digits) = value else {
        return Err(field_error(path.to_owned(), wrong_type("number", &value)));
    };
    let wide = parse_decimal(&digits).map_err(|e| field_error(path.to_owned(), too_wide(e)))?;
    let be = Zeroizing::new(wide.to_be_bytes());
    let (high, low) = be.split_at(be.len() - 32);
    // Whether Xi fits 256 bits is the accept/reject outcome: public.
    if high.iter().any(|&b| b != 0) {
        return Err(field_error(
            path.to_owned(),
            FieldError::SecretShare(shardkeep_sss_core::Error::NonCanonicalScalar),
        ));
    }
    let mut fixed = Zeroizing::new([0u8; 32]);
    fixed.copy_from_slice(low);
    Secret::from_be_bytes(&fixed)
        .map_err(|e| field_error(path.to_owned(), FieldError::SecretShare(e)))
}

fn parse_point<C: Curve>(value: Value, path: &str) -> Result<EcPoint<C>> {
    let mut members = Members::new(value, path)?;
    let (curve, named) = match members.take("Curve") {
        None => (CurveId::Secp256k1, false),
        Some(Value::String(name)) => {
            let curve = [CurveId::Secp256k1, CurveId::Ed25519]
                .into_iter()
                .find(|c| c.name() == name)
                .ok_or_else(|| field_error(members.path("Curve"), FieldError::UnknownCurve))?;
            (curve, true)
        }
        Some(other) => {
            return Err(field_error(
                members.path("Curve"),
                wrong_type("string", &other),
            ));
        }
    };
    let (coords, coords_path) = members.required("Coords")?;
    members.finish()?;
    if curve != C::ID {
        return Err(field_error(
            path.to_owned(),
            FieldError::PointCurve {
                expected: C::ID,
                got: curve,
            },
        ));
    }
    let coords = array(coords, &coords_path)?;
    let [x, y]: [Value; 2] = coords.try_into().map_err(|v: Vec<Value>| {
        field_error(coords_path.clone(), FieldError::CoordsLength(v.len()))
    })?;
    let invalid = || {
        field_error(
            coords_path.clone(),
            FieldError::InvalidPoint(shardkeep_sss_core::Error::InvalidPoint),
        )
    };
    let x = public_int(x, &format!("{coords_path}[0]"))?
        .to_fixed::<32>()
        .ok_or_else(invalid)?;
    let y = public_int(y, &format!("{coords_path}[1]"))?
        .to_fixed::<32>()
        .ok_or_else(invalid)?;
    let point = C::point_from_affine_be(&x, &y)
        .map_err(|e| field_error(coords_path, FieldError::InvalidPoint(e)))?;
    Ok(EcPoint { point, x, y, named })
}

// ---------------------------------------------------------------- writing

fn number(value: &PublicInt) -> Value {
    Value::Number(value.to_digits())
}

fn numbers(values: &[PublicInt]) -> Value {
    Value::Array(values.iter().map(number).collect())
}

fn secret(value: &SecretInt) -> Value {
    Value::Number(value.to_digits())
}

fn push_optional(out: &mut Vec<(String, Value)>, key: &str, value: &Optional<SecretInt>) {
    match value {
        Optional::Absent => {}
        Optional::Null => out.push((key.to_owned(), Value::Null)),
        Optional::Present(v) => out.push((key.to_owned(), secret(v))),
    }
}

fn push_secrets_and_ids<C: Curve>(out: &mut Vec<(String, Value)>, key: &KeyShare<C>) {
    out.push((XI_KEY.to_owned(), Value::Number(xi_digits(&key.xi))));
    out.push(("ShareID".to_owned(), number(&key.share_id)));
    out.push(("Ks".to_owned(), numbers(&key.ks)));
}

/// The decimal digits of a secret share, through wiped buffers only.
pub(crate) fn xi_digits<C: Curve>(xi: &Secret<C>) -> json::Digits {
    let be = xi.to_be_bytes();
    // 32 bytes always fit 256 bits.
    let wide = Zeroizing::new(
        BoxedUint::from_be_slice(be.as_slice(), 256)
            .unwrap_or_else(|_| BoxedUint::zero_with_precision(256)),
    );
    format_decimal(&wide)
}

fn point<C: Curve>(p: &EcPoint<C>) -> Value {
    let coords = Value::Array(vec![
        number(&PublicInt::from_be_slice(&p.x)),
        number(&PublicInt::from_be_slice(&p.y)),
    ]);
    let mut members = Vec::with_capacity(2);
    if p.named {
        members.push(("Curve".to_owned(), Value::String(C::ID.name().to_owned())));
    }
    members.push(("Coords".to_owned(), coords));
    Value::Object(members)
}

fn points<C: Curve>(values: &[EcPoint<C>]) -> Value {
    Value::Array(values.iter().map(point).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{Step, at, edited, fixture};

    #[test]
    fn debug_shows_public_values_only() {
        let data = fixture("ecdsa", 0);
        let text = format!("{data:?}");
        let json = String::from_utf8(data.to_json().to_vec()).unwrap();
        let xi = json
            .split("\"Xi\":")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap();
        assert!(!text.contains(xi));
        assert!(text.contains("ECDSA") && text.contains("parties: 5"));
    }

    #[test]
    fn accessors_agree_with_the_fixture() {
        let data = fixture("eddsa", 2);
        assert_eq!(data.curve(), CurveId::Ed25519);
        assert_eq!(data.party_count(), 5);
        assert_eq!(data.self_index().unwrap(), 2);
        assert_eq!(data.group_public_key().len(), 32);
        let xi = data.secret_share::<Ed25519>().unwrap();
        assert_eq!(
            xi.public_point().compress().as_bytes().as_slice(),
            data.public_share().unwrap()
        );
        assert!(matches!(
            data.secret_share::<Secp256k1>(),
            Err(Error::CurveMismatch {
                expected: CurveId::Ed25519,
                got: CurveId::Secp256k1
            })
        ));
        // A ShareID outside Ks loads (the self-test reports it) but has no index.
        let lost = edited(&data, |v| {
            crate::test_support::bump(at(v, &[Step::Key("ShareID")]));
        })
        .unwrap();
        assert!(matches!(lost.self_index(), Err(Error::ShareIdNotInKs)));
        assert!(matches!(lost.public_share(), Err(Error::ShareIdNotInKs)));
    }

    #[test]
    fn both_group_keys_is_an_unknown_field() {
        let err = edited(&fixture("ecdsa", 0), |v| {
            let Value::Object(members) = v else { panic!() };
            let key = crate::test_support::copy(&members.last().unwrap().1);
            members.push(("EDDSAPub".to_owned(), key));
        })
        .unwrap_err();
        assert!(
            matches!(err, Error::Field { ref field, problem: FieldError::Unknown } if field == "EDDSAPub"),
            "{err}"
        );
    }
}
