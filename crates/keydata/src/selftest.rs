//! The node self-test: named consistency checks of a loaded save data, and
//! a threshold sign/aggregate round with its peers.

use core::fmt;

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, ConcatenatingMul, Gcd, Resize};
use shardkeep_sss_core::{Curve, Threshold, lagrange_at, lagrange_at_zero};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::bigint::{INT_BITS, PublicInt, SecretInt};
use crate::error::{Error, Result};
use crate::save_data::{EcdsaExtra, Inner, KeyShare, LocalPartySaveData, Optional};
use crate::signing::{
    CommitRequest, SelfTestPeers, SelfTestResponder, Session, SignRequest, random_bytes,
};

/// One named check of the self-test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Check {
    /// `Xi*G == BigXj[self]`.
    SecretMatchesPublicShare,
    /// `ShareID` is one of `Ks`.
    ShareIdInKs,
    /// The group public key is the Lagrange interpolation at 0, over party
    /// ids, of the public shares of the first `t` parties.
    GroupKeyInterpolates,
    /// Every other public share lies on the polynomial of degree `t - 1`
    /// those `t` shares define.
    PublicSharesOnPolynomial,
    /// ECDSA: `PaillierSK.N == PaillierSK.P * PaillierSK.Q`.
    PaillierModulus,
    /// ECDSA: `PhiN == (P - 1)(Q - 1)` (Paillier primes).
    PaillierPhi,
    /// ECDSA: `LambdaN * gcd(P - 1, Q - 1) == (P - 1)(Q - 1)`, i.e.
    /// `LambdaN = lcm(P - 1, Q - 1)`.
    PaillierLambda,
    /// ECDSA: `PaillierPKs[self].N == PaillierSK.N`.
    PaillierPublicKey,
    /// ECDSA: `NTildei == (2P + 1)(2Q + 1)` (the Ñ primes `P`, `Q`).
    NTilde,
    /// ECDSA: `H1i^Alpha == H2i (mod NTildei)`.
    H2FromAlpha,
    /// ECDSA: `H2i^Beta == H1i (mod NTildei)`.
    H1FromBeta,
    /// ECDSA: `NTildej`, `H1j`, `H2j` at this party's index equal `NTildei`,
    /// `H1i`, `H2i`.
    OwnNTildeEntries,
    /// A two-round threshold Schnorr signature over a quorum that includes
    /// this party verifies against the group public key.
    SignAggregate,
}

impl Check {
    /// A stable snake-case name, for reports and audit records.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::SecretMatchesPublicShare => "secret_matches_public_share",
            Self::ShareIdInKs => "share_id_in_ks",
            Self::GroupKeyInterpolates => "group_key_interpolates",
            Self::PublicSharesOnPolynomial => "public_shares_on_polynomial",
            Self::PaillierModulus => "paillier_modulus",
            Self::PaillierPhi => "paillier_phi",
            Self::PaillierLambda => "paillier_lambda",
            Self::PaillierPublicKey => "paillier_public_key",
            Self::NTilde => "ntilde",
            Self::H2FromAlpha => "h2_from_alpha",
            Self::H1FromBeta => "h1_from_beta",
            Self::OwnNTildeEntries => "own_ntilde_entries",
            Self::SignAggregate => "sign_aggregate",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The check ran and holds.
    Passed,
    /// The check ran and fails; the text says where (public values only).
    Failed(String),
    /// The data lacks what the check needs (older tss-lib data, or a
    /// failed prerequisite); the text says what.
    NotCheckable(&'static str),
}

/// One check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// Which check.
    pub check: Check,
    /// How it went.
    pub outcome: Outcome,
}

/// The result of [`LocalPartySaveData::self_test`]: every check, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfTestReport {
    results: Vec<CheckResult>,
}

impl SelfTestReport {
    /// Whether no check failed ("not checkable" is not a failure: older
    /// data lacks some fields).
    #[must_use]
    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }

    /// Every check, in the order it ran.
    #[must_use]
    pub fn results(&self) -> &[CheckResult] {
        &self.results
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
    }

    /// The outcome of `check`, if it ran.
    #[must_use]
    pub fn outcome(&self, check: Check) -> Option<&Outcome> {
        self.results
            .iter()
            .find(|r| r.check == check)
            .map(|r| &r.outcome)
    }
}

impl fmt::Display for SelfTestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for result in &self.results {
            match &result.outcome {
                Outcome::Passed => writeln!(f, "pass           {}", result.check)?,
                Outcome::Failed(why) => writeln!(f, "FAIL           {}: {why}", result.check)?,
                Outcome::NotCheckable(why) => {
                    writeln!(f, "not checkable  {}: {why}", result.check)?;
                }
            }
        }
        Ok(())
    }
}

impl LocalPartySaveData {
    /// Runs every check on this save data and a sign/aggregate round with
    /// `peers`, for a group with `threshold` (`t` of `n` sign; tss-lib's
    /// `threshold` is `t - 1`, see
    /// [`Threshold::from_tss_lib`](shardkeep_sss_core::Threshold::from_tss_lib)).
    /// The group threshold is not stored in a save data, hence the parameter.
    ///
    /// Secret exponents and primes are only used in constant-time
    /// crypto-bigint arithmetic.
    ///
    /// # Errors
    /// [`Error::ThresholdMismatch`] when `threshold.n()` is not the number of
    /// parties. Check failures are reported in the [`SelfTestReport`], not as
    /// errors.
    pub fn self_test(
        &self,
        threshold: Threshold,
        peers: &mut dyn SelfTestPeers,
    ) -> Result<SelfTestReport> {
        if usize::from(threshold.n()) != self.party_count() {
            return Err(Error::ThresholdMismatch {
                threshold,
                parties: self.party_count(),
            });
        }
        let mut results = Vec::new();
        match &self.inner {
            Inner::Ecdsa(key, extra) => {
                key_checks(key, threshold, &mut results);
                ecdsa_checks(extra, key.self_index(), &mut results);
                results.push(sign_check(self, key, threshold, peers));
            }
            Inner::Eddsa(key) => {
                key_checks(key, threshold, &mut results);
                results.push(sign_check(self, key, threshold, peers));
            }
        }
        Ok(SelfTestReport { results })
    }
}

fn result(check: Check, outcome: Outcome) -> CheckResult {
    CheckResult { check, outcome }
}

fn pass_if(check: Check, holds: bool, failure: impl FnOnce() -> String) -> CheckResult {
    result(
        check,
        if holds {
            Outcome::Passed
        } else {
            Outcome::Failed(failure())
        },
    )
}

const NO_SELF: &str = "ShareID is not in Ks";

fn key_checks<C: Curve>(key: &KeyShare<C>, threshold: Threshold, out: &mut Vec<CheckResult>) {
    let own = key.self_index();
    out.push(match own {
        Some(i) => pass_if(
            Check::SecretMatchesPublicShare,
            key.xi.public_point().ct_eq(&key.big_xj[i].point).into(),
            || format!("Xi*G differs from BigXj[{i}]"),
        ),
        None => result(
            Check::SecretMatchesPublicShare,
            Outcome::NotCheckable(NO_SELF),
        ),
    });
    out.push(pass_if(Check::ShareIdInKs, own.is_some(), || {
        NO_SELF.to_owned()
    }));

    // Public values only: variable-time interpolation is fine.
    let t = usize::from(threshold.t());
    let ids = key.parties.as_slice();
    let points: Vec<C::Point> = key.big_xj[..t].iter().map(|p| p.point).collect();
    let interpolated =
        lagrange_at_zero::<C, _>(&ids[..t]).map(|l| C::multiscalar_mul_vartime(&l, &points));
    out.push(match interpolated {
        Ok(y) => pass_if(
            Check::GroupKeyInterpolates,
            y.ct_eq(&key.group_key.point).into(),
            || format!("interpolating BigXj[0..{t}] does not give the group public key"),
        ),
        Err(_) => result(
            Check::GroupKeyInterpolates,
            Outcome::Failed("party ids do not interpolate".to_owned()),
        ),
    });
    let off_polynomial: Vec<usize> = (t..ids.len())
        .filter(|&k| {
            lagrange_at::<C, _>(&ids[..t], &ids[k].to_scalar())
                .map(|l| {
                    !bool::from(C::multiscalar_mul_vartime(&l, &points).ct_eq(&key.big_xj[k].point))
                })
                .unwrap_or(true)
        })
        .collect();
    out.push(pass_if(
        Check::PublicSharesOnPolynomial,
        off_polynomial.is_empty(),
        || format!("BigXj at {off_polynomial:?} are not on the polynomial of BigXj[0..{t}]"),
    ));
}

const NO_PAILLIER_PRIMES: &str = "PaillierSK.P/Q absent (data from an older tss-lib)";
const NO_NTILDE_PRIMES: &str = "P/Q absent (data from an older tss-lib)";

fn ecdsa_checks(extra: &EcdsaExtra, own: Option<usize>, out: &mut Vec<CheckResult>) {
    let n = extra.paillier_n.to_boxed();
    match (extra.paillier_p.present(), extra.paillier_q.present()) {
        (Some(p), Some(q)) => {
            let p = p.expose();
            let q = q.expose();
            out.push(pass_if(
                Check::PaillierModulus,
                wide_eq(&product(p, q), &n),
                || "PaillierSK.N != P*Q".to_owned(),
            ));
            let one = BoxedUint::one_with_precision(INT_BITS);
            let p1 = Zeroizing::new(p.wrapping_sub(&one));
            let q1 = Zeroizing::new(q.wrapping_sub(&one));
            let phi = product(&p1, &q1);
            out.push(pass_if(
                Check::PaillierPhi,
                wide_eq(&phi, extra.phi_n.expose()),
                || "PhiN != (P-1)(Q-1)".to_owned(),
            ));
            // Constant-time gcd (safegcd) of secret values.
            let gcd = Zeroizing::new(p1.gcd(&q1));
            let lambda_times_gcd = product(extra.lambda_n.expose(), &gcd);
            out.push(pass_if(
                Check::PaillierLambda,
                bool::from(lambda_times_gcd.ct_eq(&phi)),
                || "LambdaN != lcm(P-1, Q-1)".to_owned(),
            ));
        }
        _ => {
            for check in [
                Check::PaillierModulus,
                Check::PaillierPhi,
                Check::PaillierLambda,
            ] {
                out.push(result(check, Outcome::NotCheckable(NO_PAILLIER_PRIMES)));
            }
        }
    }
    out.push(match own {
        Some(i) => pass_if(
            Check::PaillierPublicKey,
            extra.paillier_pks[i] == extra.paillier_n,
            || format!("PaillierPKs[{i}].N != PaillierSK.N"),
        ),
        None => result(Check::PaillierPublicKey, Outcome::NotCheckable(NO_SELF)),
    });

    let ntilde = extra.ntilde_i.to_boxed();
    out.push(match (extra.p.present(), extra.q.present()) {
        (Some(p), Some(q)) => {
            let (p2, q2) = (safe_prime(p), safe_prime(q));
            pass_if(Check::NTilde, wide_eq(&product(&p2, &q2), &ntilde), || {
                "NTildei != (2P+1)(2Q+1)".to_owned()
            })
        }
        _ => result(Check::NTilde, Outcome::NotCheckable(NO_NTILDE_PRIMES)),
    });
    out.push(dlog_check(
        Check::H2FromAlpha,
        extra,
        &extra.h1i,
        &extra.alpha,
        &extra.h2i,
        "H1i^Alpha != H2i mod NTildei",
    ));
    out.push(dlog_check(
        Check::H1FromBeta,
        extra,
        &extra.h2i,
        &extra.beta,
        &extra.h1i,
        "H2i^Beta != H1i mod NTildei",
    ));

    out.push(match own {
        Some(i) => {
            let mut differ = Vec::new();
            for (name, all, mine) in [
                ("NTildej", &extra.ntilde_j, &extra.ntilde_i),
                ("H1j", &extra.h1j, &extra.h1i),
                ("H2j", &extra.h2j, &extra.h2i),
            ] {
                if all[i] != *mine {
                    differ.push(name);
                }
            }
            pass_if(Check::OwnNTildeEntries, differ.is_empty(), || {
                format!("{differ:?} at index {i} differ from the own values")
            })
        }
        None => result(Check::OwnNTildeEntries, Outcome::NotCheckable(NO_SELF)),
    });
}

/// `base^exponent == expected (mod NTildei)`, the exponent secret: a
/// constant-time Montgomery exponentiation at the fixed 2048-bit precision.
fn dlog_check(
    check: Check,
    extra: &EcdsaExtra,
    base: &PublicInt,
    exponent: &Optional<SecretInt>,
    expected: &PublicInt,
    failure: &str,
) -> CheckResult {
    let Some(exponent) = exponent.present() else {
        return result(
            check,
            Outcome::NotCheckable("Alpha/Beta absent (data from an older tss-lib)"),
        );
    };
    let modulus = extra.ntilde_i.to_boxed();
    let base = base.to_boxed();
    let expected = expected.to_boxed();
    // Public values: variable-time comparisons and parameters are fine.
    if modulus.bit_width_vartime() < 2 {
        return result(check, Outcome::Failed("NTildei below 2".to_owned()));
    }
    if base.cmp_vartime(&modulus).is_ge() || expected.cmp_vartime(&modulus).is_ge() {
        return result(
            check,
            Outcome::Failed("H1i/H2i not below NTildei".to_owned()),
        );
    }
    let Some(odd) = modulus.to_odd().into_option() else {
        return result(check, Outcome::Failed("NTildei is even".to_owned()));
    };
    let params = BoxedMontyParams::new_vartime(odd);
    let power = Zeroizing::new(BoxedMontyForm::new(base, &params).pow(exponent.expose()));
    pass_if(check, power.retrieve() == expected, || failure.to_owned())
}

/// `a * b` at 4096 bits, in a wiped buffer (constant time).
fn product(a: &BoxedUint, b: &BoxedUint) -> Zeroizing<BoxedUint> {
    Zeroizing::new(a.concatenating_mul(b))
}

/// Compares a 4096-bit product with a 2048-bit value in constant time.
fn wide_eq(product: &BoxedUint, value: &BoxedUint) -> bool {
    // Widening never drops bits.
    let wide = Zeroizing::new(value.resize_unchecked(product.bits_precision()));
    product.ct_eq(&*wide).into()
}

/// `2x + 1` at 2048 bits (the Ñ primes are about 1023 bits).
fn safe_prime(x: &SecretInt) -> Zeroizing<BoxedUint> {
    let doubled = Zeroizing::new(x.expose().wrapping_add(x.expose()));
    Zeroizing::new(doubled.wrapping_add(BoxedUint::one_with_precision(INT_BITS)))
}

/// The quorum of the signing round: this party and the next `t - 1` in
/// `Ks` order (wrapping), listed in `Ks` order.
fn signing_quorum(own: usize, parties: usize, t: usize) -> Vec<usize> {
    let mut quorum: Vec<usize> = (0..t).map(|k| (own + k) % parties).collect();
    quorum.sort_unstable();
    quorum
}

fn sign_check<C: Curve>(
    data: &LocalPartySaveData,
    key: &KeyShare<C>,
    threshold: Threshold,
    peers: &mut dyn SelfTestPeers,
) -> CheckResult {
    let Some(own) = key.self_index() else {
        return result(Check::SignAggregate, Outcome::NotCheckable(NO_SELF));
    };
    match sign_round(data, key, own, threshold, peers) {
        Ok(()) => result(Check::SignAggregate, Outcome::Passed),
        Err(why) => result(Check::SignAggregate, Outcome::Failed(why)),
    }
}

fn sign_round<C: Curve>(
    data: &LocalPartySaveData,
    key: &KeyShare<C>,
    own: usize,
    threshold: Threshold,
    peers: &mut dyn SelfTestPeers,
) -> Result<(), String> {
    let positions = signing_quorum(own, key.ks.len(), usize::from(threshold.t()));
    let quorum: Vec<Vec<u8>> = positions
        .iter()
        .map(|&i| key.ks[i].as_bytes().to_vec())
        .collect();
    let failed = |stage: &'static str| move |e: Error| format!("{stage}: {e}");
    let request = CommitRequest {
        session_id: random_bytes().map_err(failed("session"))?,
        curve: C::ID,
        group_public_key: key.group_key.compressed(),
        quorum: quorum.clone(),
        coordinator: key.share_id.as_bytes().to_vec(),
    };
    let mut me = SelfTestResponder::new(data);
    let mut commitments = peers.commit(&request).map_err(failed("round 1"))?;
    commitments.push(me.commit(&request).map_err(failed("round 1"))?);
    let commitments = quorum
        .iter()
        .map(|id| {
            let mut matching = commitments.iter().filter(|c| &c.party_id == id);
            match (matching.next(), matching.next()) {
                (Some(c), None) => Ok(c.clone()),
                _ => Err(format!(
                    "round 1: not exactly one commitment from party {}",
                    hex::encode(id)
                )),
            }
        })
        .collect::<Result<Vec<_>, String>>()?;
    let sign_request = SignRequest {
        session_id: request.session_id,
        message: random_bytes().map_err(failed("message"))?,
        commitments,
    };
    let mut shares = peers.sign(&sign_request).map_err(failed("round 2"))?;
    shares.push(me.sign(&sign_request).map_err(failed("round 2"))?);

    let session = Session::<C>::new(key, &sign_request.message, &sign_request.commitments)
        .map_err(failed("round 2"))?;
    let mut aggregate = C::Scalar::from(0u64);
    for (j, id) in quorum.iter().enumerate() {
        let mut matching = shares.iter().filter(|s| &s.party_id == id);
        let (Some(share), None) = (matching.next(), matching.next()) else {
            return Err(format!(
                "round 2: not exactly one signature share from party {}",
                hex::encode(id)
            ));
        };
        let z = C::scalar_from_be_bytes(&share.share).ok_or_else(|| {
            format!(
                "round 2: malformed signature share from party {}",
                hex::encode(id)
            )
        })?;
        if !session.share_verifies(key, j, &z) {
            return Err(format!(
                "signature share of Ks[{}] does not verify against its public share",
                positions[j]
            ));
        }
        aggregate += z;
    }
    // z*G == R + c*Y: the Schnorr verification equation, public values.
    let expected = session.group_commitment + key.group_key.point * session.challenge;
    if bool::from(C::mul_base(&aggregate).ct_eq(&expected)) {
        Ok(())
    } else {
        Err("aggregate signature does not verify against the group public key".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Value;
    use crate::signing::InProcessPeers;
    use crate::test_support::{
        Step, all_parties, at, bump, copy, edited, peers_of, threshold, without,
    };

    /// Runs party `party`'s self-test with `edit` applied to its JSON and
    /// returns the failed and not-checkable checks.
    fn run(
        protocol: &str,
        party: usize,
        edit: impl FnOnce(&mut Value),
    ) -> (Vec<Check>, Vec<Check>) {
        let parties = all_parties(protocol);
        let data = edited(&parties[party], edit).unwrap();
        let report = data
            .self_test(threshold(), &mut peers_of(&parties, party))
            .unwrap();
        let failed = report.failures().map(|r| r.check).collect();
        let unchecked = report
            .results()
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::NotCheckable(_)))
            .map(|r| r.check)
            .collect();
        (failed, unchecked)
    }

    fn failures(protocol: &str, party: usize, edit: impl FnOnce(&mut Value)) -> Vec<Check> {
        run(protocol, party, edit).0
    }

    #[test]
    fn unchanged_data_passes() {
        for protocol in ["ecdsa", "eddsa"] {
            assert_eq!(run(protocol, 0, |_| {}), (vec![], vec![]));
        }
    }

    #[test]
    fn a_flipped_xi_fails_its_public_share_and_the_signature() {
        for protocol in ["ecdsa", "eddsa"] {
            assert_eq!(
                failures(protocol, 1, |v| bump(at(v, &[Step::Key("Xi")]))),
                [Check::SecretMatchesPublicShare, Check::SignAggregate]
            );
        }
    }

    #[test]
    fn a_foreign_public_share_is_off_the_polynomial() {
        for protocol in ["ecdsa", "eddsa"] {
            // Party 0 signs with parties 1 and 2; BigXj[4] is outside both quorums.
            let got = failures(protocol, 0, |v| {
                let other = copy(at(v, &[Step::Key("BigXj"), Step::Index(3)]));
                *at(v, &[Step::Key("BigXj"), Step::Index(4)]) = other;
            });
            assert_eq!(got, [Check::PublicSharesOnPolynomial]);
            // Inside the interpolation quorum (parties 0-2) the group key
            // check fails too; party 3 signs with 4 and 0.
            let got = failures(protocol, 3, |v| {
                let other = copy(at(v, &[Step::Key("BigXj"), Step::Index(3)]));
                *at(v, &[Step::Key("BigXj"), Step::Index(1)]) = other;
            });
            assert_eq!(
                got,
                [Check::GroupKeyInterpolates, Check::PublicSharesOnPolynomial]
            );
        }
    }

    #[test]
    fn a_flipped_ks_entry_is_caught() {
        for protocol in ["ecdsa", "eddsa"] {
            let got = failures(protocol, 0, |v| {
                bump(at(v, &[Step::Key("Ks"), Step::Index(4)]));
            });
            assert_eq!(got, [Check::PublicSharesOnPolynomial]);
            // The party's own entry: it is no longer in Ks.
            let (failed, unchecked) = run(protocol, 0, |v| {
                bump(at(v, &[Step::Key("Ks"), Step::Index(0)]));
            });
            assert_eq!(
                failed,
                [
                    Check::ShareIdInKs,
                    Check::GroupKeyInterpolates,
                    Check::PublicSharesOnPolynomial
                ]
            );
            assert!(unchecked.contains(&Check::SecretMatchesPublicShare));
            assert!(unchecked.contains(&Check::SignAggregate));
        }
    }

    #[test]
    fn a_foreign_group_key_fails_interpolation_and_the_signature() {
        for (protocol, key) in [("ecdsa", "ECDSAPub"), ("eddsa", "EDDSAPub")] {
            let got = failures(protocol, 2, |v| {
                let other = copy(at(v, &[Step::Key("BigXj"), Step::Index(0)]));
                *at(v, &[Step::Key(key)]) = other;
            });
            assert_eq!(got, [Check::GroupKeyInterpolates, Check::SignAggregate]);
        }
    }

    #[test]
    fn each_paillier_and_ntilde_field_has_its_own_check() {
        let sk = |field| [Step::Key("PaillierSK"), Step::Key(field)];
        let cases: Vec<(Vec<Step<'_>>, Vec<Check>)> = vec![
            (
                sk("N").to_vec(),
                vec![Check::PaillierModulus, Check::PaillierPublicKey],
            ),
            (sk("PhiN").to_vec(), vec![Check::PaillierPhi]),
            (sk("LambdaN").to_vec(), vec![Check::PaillierLambda]),
            (
                sk("P").to_vec(),
                vec![
                    Check::PaillierModulus,
                    Check::PaillierPhi,
                    Check::PaillierLambda,
                ],
            ),
            (
                vec![Step::Key("PaillierPKs"), Step::Index(3), Step::Key("N")],
                vec![Check::PaillierPublicKey],
            ),
            (vec![Step::Key("P")], vec![Check::NTilde]),
            (vec![Step::Key("Alpha")], vec![Check::H2FromAlpha]),
            (vec![Step::Key("Beta")], vec![Check::H1FromBeta]),
            (
                vec![Step::Key("H2i")],
                vec![
                    Check::H2FromAlpha,
                    Check::H1FromBeta,
                    Check::OwnNTildeEntries,
                ],
            ),
            (
                vec![Step::Key("H1j"), Step::Index(3)],
                vec![Check::OwnNTildeEntries],
            ),
        ];
        for (path, expected) in cases {
            assert_eq!(failures("ecdsa", 3, |v| bump(at(v, &path))), expected);
        }
    }

    #[test]
    fn older_data_without_the_new_fields_is_not_checkable_but_passes() {
        let parties = all_parties("ecdsa");
        let old = edited(&parties[0], |v| {
            without(v, &["Alpha", "Beta", "P", "Q"]);
            let Value::Object(sk) = at(v, &[Step::Key("PaillierSK")]) else {
                panic!()
            };
            sk.retain(|(k, _)| k != "P" && k != "Q");
        })
        .unwrap();
        let report = old
            .self_test(threshold(), &mut peers_of(&parties, 0))
            .unwrap();
        assert!(report.passed(), "{report}");
        for check in [
            Check::PaillierModulus,
            Check::PaillierPhi,
            Check::PaillierLambda,
            Check::NTilde,
            Check::H2FromAlpha,
            Check::H1FromBeta,
        ] {
            assert!(
                matches!(report.outcome(check), Some(Outcome::NotCheckable(_))),
                "{check}"
            );
        }
        assert_eq!(report.outcome(Check::SignAggregate), Some(&Outcome::Passed));
    }

    #[test]
    fn a_wrong_threshold_is_an_error_and_a_too_small_quorum_fails_to_sign() {
        let parties = all_parties("eddsa");
        let err = parties[0]
            .self_test(Threshold::new(3, 4).unwrap(), &mut peers_of(&parties, 0))
            .unwrap_err();
        assert!(matches!(err, Error::ThresholdMismatch { parties: 5, .. }));
        // Claiming t = 2 when the polynomial has degree 2: the group key does
        // not interpolate from two shares, and two signers cannot sign.
        let report = parties[0]
            .self_test(Threshold::new(2, 5).unwrap(), &mut peers_of(&parties, 0))
            .unwrap();
        let failed: Vec<Check> = report.failures().map(|r| r.check).collect();
        assert_eq!(
            failed,
            [
                Check::GroupKeyInterpolates,
                Check::PublicSharesOnPolynomial,
                Check::SignAggregate
            ]
        );
    }

    #[test]
    fn missing_peers_fail_the_signature_with_a_reason() {
        let parties = all_parties("ecdsa");
        let mut lonely = InProcessPeers::new([&parties[4]]);
        let report = parties[0].self_test(threshold(), &mut lonely).unwrap();
        let Some(Outcome::Failed(why)) = report.outcome(Check::SignAggregate) else {
            panic!("{report}")
        };
        assert!(why.contains("no peer holds party"), "{why}");
        assert_eq!(report.failures().count(), 1);
    }

    #[test]
    fn degenerate_ntilde_values_fail_without_panicking() {
        let set = |field: &'static str, digits: &'static str| {
            move |v: &mut Value| {
                *at(v, &[Step::Key(field)]) = Value::Number(crate::json::Digits::from_canonical(
                    Zeroizing::new(digits.as_bytes().to_vec()),
                ));
            }
        };
        for (field, digits) in [
            ("NTildei", "0"),
            ("NTildei", "1"),
            ("NTildei", "1024"),
            ("H1i", "0"),
            ("Alpha", "0"),
        ] {
            let failed = failures("ecdsa", 0, set(field, digits));
            assert!(
                failed.contains(&Check::H2FromAlpha),
                "{field}={digits}: {failed:?}"
            );
        }
    }

    #[test]
    fn report_names_every_check() {
        let parties = all_parties("ecdsa");
        let report = parties[0]
            .self_test(threshold(), &mut peers_of(&parties, 0))
            .unwrap();
        let text = report.to_string();
        for r in report.results() {
            assert!(text.contains(r.check.name()));
        }
        assert_eq!(report.results().len(), 13);
    }
}
