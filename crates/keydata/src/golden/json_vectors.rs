//! The `json_*` vectors: tss-lib save-data JSON as older and newer tss-lib
//! versions write it (`pass/`), and one breach of each rule of the strict
//! reader (`fail/`), every one derived from a fixture by editing its JSON
//! tree or its compact text. `expect` is the error class
//! `tests/vectors.rs` derives from the error (`classify`); a pass vector
//! says what writing it gives back (`writes: same`, or the fixture whose
//! compact form it writes) and that its self-test passes.

use shardkeep_test_support::tss_lib::{Protocol, fixture_bytes, fixture_name};
use shardkeep_test_support::{GoldenDir, Vector};
use zeroize::Zeroizing;

use crate::json::{self, Digits, Value};
use crate::test_support::{Step, at};

/// The secp256k1 group order.
const SECP256K1_N: &str = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
/// The ed25519 group order, `2^252 + 27742317777372353535851937790883648493`.
const ED25519_L: &str = "1000000000000000000000000000000014def9dea2f79cd65812631a5cf5d3ed";
/// The ed25519 field prime minus one, `2^255 - 20`: the `y` of the point
/// of order 2.
const ED25519_P_MINUS_1: &str = "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffec";

// ---- decimal arithmetic on the fixtures' big numbers (public test values) --

/// Little-endian decimal digits.
fn digits_le(decimal: &str) -> Vec<u8> {
    decimal.bytes().rev().map(|d| d - b'0').collect()
}

fn from_digits_le(mut digits: Vec<u8>) -> String {
    while digits.len() > 1 && digits.last() == Some(&0) {
        digits.pop();
    }
    digits.iter().rev().map(|d| char::from(b'0' + d)).collect()
}

/// `a * m + c` in decimal.
fn mul_add(a: &str, m: u8, c: u8) -> String {
    let mut carry = u32::from(c);
    let mut out: Vec<u8> = digits_le(a)
        .into_iter()
        .map(|d| {
            let x = u32::from(d) * u32::from(m) + carry;
            carry = x / 10;
            u8::try_from(x % 10).unwrap()
        })
        .collect();
    while carry > 0 {
        out.push(u8::try_from(carry % 10).unwrap());
        carry /= 10;
    }
    from_digits_le(out)
}

/// `a + b` in decimal.
fn add(a: &str, b: &str) -> String {
    let (a, b) = (digits_le(a), digits_le(b));
    let mut carry = 0;
    let mut out = Vec::new();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0) + b.get(i).copied().unwrap_or(0) + carry;
        out.push(x % 10);
        carry = x / 10;
    }
    out.push(carry);
    from_digits_le(out)
}

/// A hex number in decimal.
fn from_hex(hex: &str) -> String {
    hex.chars().fold("0".to_owned(), |acc, c| {
        mul_add(&acc, 16, u8::try_from(c.to_digit(16).unwrap()).unwrap())
    })
}

/// `2^k` in decimal.
fn pow2(k: u32) -> String {
    (0..k).fold("1".to_owned(), |acc, _| mul_add(&acc, 2, 0))
}

// ---- JSON trees and texts ----

fn number(decimal: &str) -> Value {
    Value::Number(Digits::from_canonical(Zeroizing::new(
        decimal.as_bytes().to_vec(),
    )))
}

fn decimal(value: &Value) -> String {
    let Value::Number(digits) = value else {
        panic!("not a number")
    };
    String::from_utf8(digits.as_bytes().to_vec()).unwrap()
}

fn members(value: &mut Value) -> &mut Vec<(String, Value)> {
    let Value::Object(members) = value else {
        panic!("not an object")
    };
    members
}

fn items(value: &mut Value) -> &mut Vec<Value> {
    let Value::Array(items) = value else {
        panic!("not an array")
    };
    items
}

/// Python's `dict.update`: a present key keeps its place, a new one goes
/// last.
fn set(object: &mut Value, key: &str, value: Value) {
    let members = members(object);
    match members.iter_mut().find(|(k, _)| k == key) {
        Some(member) => member.1 = value,
        None => members.push((key.to_owned(), value)),
    }
}

fn remove(object: &mut Value, key: &str) {
    let members = members(object);
    let before = members.len();
    members.retain(|(k, _)| k != key);
    assert_eq!(members.len(), before - 1, "no member {key}");
}

/// The fixture of party 0, parsed.
fn load(protocol: Protocol) -> Value {
    json::parse(&fixture_bytes(protocol, 0).unwrap()).unwrap()
}

/// The fixture of party 0 as compact text.
fn compact(protocol: Protocol) -> String {
    String::from_utf8(json::write(&load(protocol)).to_vec()).unwrap()
}

/// The fixture of party 0, edited as a tree, as compact text.
fn edit(protocol: Protocol, change: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value = load(protocol);
    change(&mut value);
    json::write(&value).to_vec()
}

/// The compact fixture of party 0 with the first `old` replaced by `new`.
fn text_edit(protocol: Protocol, old: &str, new: &str) -> Vec<u8> {
    let text = compact(protocol);
    assert!(text.contains(old), "{old}");
    text.replacen(old, new, 1).into_bytes()
}

/// `value` as Python's `json.dumps(value, indent="\t")` writes it.
fn python_indented(value: &Value, level: usize, out: &mut String) {
    let indent = |level: usize| "\t".repeat(level);
    match value {
        Value::Null => out.push_str("null"),
        Value::Number(digits) => out.push_str(std::str::from_utf8(digits.as_bytes()).unwrap()),
        Value::String(s) => out.push_str(&format!("\"{s}\"")),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Object(members) if members.is_empty() => out.push_str("{}"),
        Value::Array(items) => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                out.push_str(&indent(level + 1));
                python_indented(item, level + 1, out);
            }
            out.push('\n');
            out.push_str(&indent(level));
            out.push(']');
        }
        Value::Object(members) => {
            out.push_str("{\n");
            for (i, (key, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                out.push_str(&format!("{}\"{key}\": ", indent(level + 1)));
                python_indented(item, level + 1, out);
            }
            out.push('\n');
            out.push_str(&indent(level));
            out.push('}');
        }
    }
}

fn pass(dir: &mut GoldenDir, name: &str, payload: Vec<u8>, writes: &str, comment: &str) {
    let vector = Vector::new("ok")
        .header("writes", writes)
        .header("self-test", "pass")
        .comment(comment)
        .body(payload);
    dir.add(&format!("pass/json_{name}"), &vector);
}

fn fail(dir: &mut GoldenDir, name: &str, payload: Vec<u8>, expect: &str, comment: &str) {
    let vector = Vector::new(expect).comment(comment).body(payload);
    dir.add(&format!("fail/json_{name}"), &vector);
}

#[allow(clippy::too_many_lines)] // One entry per rule of the reader.
pub(super) fn generate(dir: &mut GoldenDir) {
    use Protocol::{Ecdsa, Eddsa};
    let ecdsa = compact(Ecdsa).into_bytes();
    let (e, d) = (load(Ecdsa), load(Eddsa));
    let member = |value: &Value, key: &str| -> String {
        let Value::Object(members) = value else {
            panic!("not an object")
        };
        decimal(&members.iter().find(|(k, _)| k == key).unwrap().1)
    };
    let (e_h1i, d_xi) = (member(&e, "H1i"), member(&d, "Xi"));
    let d_ks: Vec<String> = {
        let Value::Object(members) = &d else {
            panic!("not an object")
        };
        let Value::Array(ks) = &members.iter().find(|(k, _)| k == "Ks").unwrap().1 else {
            panic!("Ks is not an array")
        };
        ks.iter().map(decimal).collect()
    };
    let ed25519_l = from_hex(ED25519_L);

    // ---- pass vectors
    pass(
        dir,
        "ecdsa_legacy_without_curve",
        edit(Ecdsa, |doc| {
            for i in 0..5 {
                remove(at(doc, &[Step::Key("BigXj"), Step::Index(i)]), "Curve");
            }
            remove(at(doc, &[Step::Key("ECDSAPub")]), "Curve");
        }),
        "same",
        "points written before tss-lib 1aa0a75 (2021-08): no Curve key, read as secp256k1",
    );
    pass(
        dir,
        "ecdsa_without_alpha_beta_p_q",
        edit(Ecdsa, |doc| {
            for key in ["Alpha", "Beta", "P", "Q"] {
                remove(doc, key);
            }
            remove(at(doc, &[Step::Key("PaillierSK")]), "P");
            remove(at(doc, &[Step::Key("PaillierSK")]), "Q");
        }),
        "same",
        "pre-params from an older tss-lib: no Alpha, Beta, P, Q, PaillierSK.P/Q",
    );
    pass(
        dir,
        "ecdsa_null_alpha_beta_p_q",
        edit(Ecdsa, |doc| {
            for key in ["Alpha", "Beta", "P", "Q"] {
                set(doc, key, Value::Null);
            }
        }),
        "same",
        "older data re-saved by a newer tss-lib: nil pointers written as null",
    );
    let mut reordered = load(Eddsa);
    members(&mut reordered).reverse();
    let mut indented = String::new();
    python_indented(&reordered, 0, &mut indented);
    pass(
        dir,
        "eddsa_reordered_and_indented",
        indented.replace(',', " ,\r\n").into_bytes(),
        &fixture_name(Eddsa, 0),
        "members in reverse order, tabs and CRLF: read like Go does, written in declaration order",
    );

    // ---- JSON syntax
    let xi = format!("\"Xi\":{d_xi}");
    let h1i = format!("\"H1i\":{e_h1i}");
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "trailing_data",
            [ecdsa.as_slice(), b"\n{}"].concat(),
            "json: TrailingData",
            "a second document after the first",
        ),
        (
            "truncated",
            ecdsa[..ecdsa.len() / 2].to_vec(),
            "json: UnexpectedEnd",
            "cut in the middle",
        ),
        ("empty", Vec::new(), "json: UnexpectedEnd", "no document"),
        (
            "duplicate_key",
            text_edit(Eddsa, "\"ShareID\"", &format!("{xi},\"ShareID\"")),
            "json: DuplicateKey",
            "Xi twice (Go would keep the last one silently)",
        ),
        (
            "negative_number",
            text_edit(Eddsa, &xi, &format!("\"Xi\":-{d_xi}")),
            "json: NegativeNumber",
            "no save-data number is negative",
        ),
        (
            "minus_zero",
            text_edit(Eddsa, &xi, "\"Xi\":-0"),
            "json: NegativeNumber",
            "-0 is JSON but never written by Go",
        ),
        (
            "fraction",
            text_edit(Ecdsa, &h1i, &format!("{h1i}.0")),
            "json: NonIntegerNumber",
            "a fraction where tss-lib writes a big.Int",
        ),
        (
            "exponent",
            text_edit(Eddsa, &xi, "\"Xi\":1e70"),
            "json: NonIntegerNumber",
            "an exponent where tss-lib writes a big.Int",
        ),
        (
            "leading_zero",
            text_edit(Eddsa, &xi, &format!("\"Xi\":0{d_xi}")),
            "json: LeadingZero",
            "not JSON, and never written by Go",
        ),
        (
            "number_too_long",
            text_edit(Ecdsa, &h1i, &format!("\"H1i\":{}", "1".repeat(618))),
            "json: NumberTooLong",
            "618 digits: more than any 2048-bit number has",
        ),
        (
            "string_escape",
            text_edit(Eddsa, "\"ed25519\"", "\"ed2\\u00355519\""),
            "json: StringEscape",
            "tss-lib's names never need escapes",
        ),
        (
            "true_literal",
            text_edit(Eddsa, &xi, "\"Xi\":true"),
            "json: Unexpected",
            "booleans are not part of the schema",
        ),
        (
            "too_deep",
            [[b'['; 9], [b']'; 9]].concat(),
            "json: TooDeep",
            "nesting beyond the cap",
        ),
        (
            "control_byte_in_string",
            text_edit(Eddsa, "\"ed25519\"", "\"ed25519\t\""),
            "json: InvalidStringByte",
            "a raw tab inside a string",
        ),
        // ---- schema
        (
            "top_level_array",
            b"[]".to_vec(),
            "field (top level): WrongType",
            "not an object",
        ),
        (
            "unknown_field",
            text_edit(Eddsa, "\"ShareID\"", "\"Extra\":1,\"ShareID\""),
            "field Extra: Unknown",
            "a field tss-lib does not write",
        ),
        (
            "unknown_point_field",
            text_edit(Eddsa, "\"Coords\"", "\"Z\":1,\"Coords\""),
            "field BigXj[0].Z: Unknown",
            "an extra member in a point",
        ),
        (
            "unknown_paillier_pk_field",
            edit(Ecdsa, |doc| {
                set(
                    at(doc, &[Step::Key("PaillierPKs"), Step::Index(2)]),
                    "G",
                    number("1"),
                );
            }),
            "field PaillierPKs[2].G: Unknown",
            "an extra member in a Paillier public key",
        ),
        (
            "no_group_key",
            edit(Eddsa, |doc| remove(doc, "EDDSAPub")),
            "UnknownProtocol",
            "neither ECDSAPub nor EDDSAPub",
        ),
        (
            "missing_xi",
            edit(Eddsa, |doc| remove(doc, "Xi")),
            "field Xi: Missing",
            "no secret share",
        ),
        (
            "missing_paillier_sk",
            edit(Ecdsa, |doc| remove(doc, "PaillierSK")),
            "field PaillierSK: Missing",
            "ECDSA without its Paillier key",
        ),
        (
            "missing_lambda_n",
            edit(Ecdsa, |doc| {
                remove(at(doc, &[Step::Key("PaillierSK")]), "LambdaN");
            }),
            "field PaillierSK.LambdaN: Missing",
            "Paillier key without LambdaN",
        ),
        (
            "null_xi",
            edit(Eddsa, |doc| set(doc, "Xi", Value::Null)),
            "field Xi: WrongType",
            "a nil Xi is no key",
        ),
        (
            "quoted_number",
            text_edit(Eddsa, &xi, "\"Xi\":\"12345\""),
            "field Xi: WrongType",
            "Go's big.Int refuses quoted numbers too",
        ),
        (
            "long_string",
            text_edit(Eddsa, &xi, &format!("\"Xi\":\"{d_xi}\"")),
            "json: StringTooLong",
            "strings are names, at most 64 bytes",
        ),
        (
            "ks_not_array",
            edit(Eddsa, |doc| set(doc, "Ks", Value::Object(Vec::new()))),
            "field Ks: WrongType",
            "Ks must be an array",
        ),
        (
            "empty_ks",
            edit(Eddsa, |doc| {
                set(doc, "Ks", Value::Array(Vec::new()));
                set(doc, "BigXj", Value::Array(Vec::new()));
            }),
            "field Ks: Empty",
            "no parties",
        ),
        (
            "bigxj_length_mismatch",
            edit(Eddsa, |doc| {
                items(at(doc, &[Step::Key("BigXj")])).pop();
            }),
            "field BigXj: LengthMismatch",
            "four public shares for five parties",
        ),
        (
            "ntildej_length_mismatch",
            edit(Ecdsa, |doc| {
                items(at(doc, &[Step::Key("NTildej")])).pop();
            }),
            "field NTildej: LengthMismatch",
            "four Ntilde values for five parties",
        ),
        (
            "paillier_pks_length_mismatch",
            edit(Ecdsa, |doc| {
                items(at(doc, &[Step::Key("PaillierPKs")]))
                    .push(Value::Object(vec![("N".to_owned(), number("1"))]));
            }),
            "field PaillierPKs: LengthMismatch",
            "six Paillier keys for five parties",
        ),
        (
            "number_too_wide",
            text_edit(Ecdsa, &h1i, &format!("\"H1i\":{}", "9".repeat(617))),
            "field H1i: TooWide",
            "617 digits but above 2^2048",
        ),
        (
            "duplicate_party_id",
            edit(Eddsa, |doc| {
                *at(doc, &[Step::Key("Ks"), Step::Index(3)]) = number(&d_ks[1]);
            }),
            "field Ks: PartyId(DuplicatePartyId)",
            "two parties with one id",
        ),
        (
            "duplicate_party_id_mod_order",
            edit(Eddsa, |doc| {
                *at(doc, &[Step::Key("Ks"), Step::Index(3)]) = number(&add(&d_ks[1], &ed25519_l));
            }),
            "field Ks: PartyId(DuplicatePartyId)",
            "ids equal modulo the ed25519 order",
        ),
        (
            "zero_party_id",
            edit(Eddsa, |doc| {
                *at(doc, &[Step::Key("Ks"), Step::Index(2)]) = number(&ed25519_l);
            }),
            "field Ks[2]: PartyId(ZeroPartyId)",
            "the group order, zero after reduction",
        ),
        (
            "party_id_too_long",
            edit(Eddsa, |doc| {
                *at(doc, &[Step::Key("Ks"), Step::Index(2)]) = number(&pow2(520));
            }),
            "field Ks[2]: PartyId(PartyIdTooLong)",
            "a 66-byte id",
        ),
        (
            "zero_share_id",
            edit(Ecdsa, |doc| set(doc, "ShareID", number("0"))),
            "field ShareID: PartyId(ZeroPartyId)",
            "ShareID zero",
        ),
        (
            "xi_zero",
            edit(Eddsa, |doc| set(doc, "Xi", number("0"))),
            "field Xi: SecretShare(ZeroScalar)",
            "a zero share",
        ),
        (
            "xi_not_below_order",
            edit(Ecdsa, |doc| {
                set(doc, "Xi", number(&add(&from_hex(SECP256K1_N), "5")));
            }),
            "field Xi: SecretShare(NonCanonicalScalar)",
            "Xi >= n (tss-lib reduces it)",
        ),
        (
            "xi_too_wide",
            edit(Ecdsa, |doc| set(doc, "Xi", number(&pow2(300)))),
            "field Xi: SecretShare(NonCanonicalScalar)",
            "Xi wider than 256 bits",
        ),
        (
            "point_off_curve",
            edit(Ecdsa, |doc| {
                let y = at(
                    doc,
                    &[
                        Step::Key("BigXj"),
                        Step::Index(2),
                        Step::Key("Coords"),
                        Step::Index(1),
                    ],
                );
                *y = number(&add(&decimal(y), "1"));
            }),
            "field BigXj[2].Coords: InvalidPoint(InvalidPoint)",
            "y + 1",
        ),
        (
            "point_coordinate_too_wide",
            edit(Ecdsa, |doc| {
                *at(
                    doc,
                    &[Step::Key("ECDSAPub"), Step::Key("Coords"), Step::Index(0)],
                ) = number(&pow2(256));
            }),
            "field ECDSAPub.Coords: InvalidPoint(InvalidPoint)",
            "a 257-bit coordinate",
        ),
        (
            "ed25519_small_order_point",
            edit(Eddsa, |doc| {
                set(
                    at(doc, &[Step::Key("BigXj"), Step::Index(1)]),
                    "Coords",
                    Value::Array(vec![number("0"), number(&from_hex(ED25519_P_MINUS_1))]),
                );
            }),
            "field BigXj[1].Coords: InvalidPoint(TorsionPoint)",
            "(0, -1) has order 2",
        ),
        (
            "ed25519_identity",
            edit(Eddsa, |doc| {
                set(
                    at(doc, &[Step::Key("EDDSAPub")]),
                    "Coords",
                    Value::Array(vec![number("0"), number("1")]),
                );
            }),
            "field EDDSAPub.Coords: InvalidPoint(IdentityPoint)",
            "the neutral element",
        ),
        (
            "coords_three_entries",
            edit(Eddsa, |doc| {
                items(at(
                    doc,
                    &[Step::Key("BigXj"), Step::Index(0), Step::Key("Coords")],
                ))
                .push(number("1"));
            }),
            "field BigXj[0].Coords: CoordsLength",
            "affine points have two coordinates",
        ),
        (
            "unknown_curve",
            text_edit(Ecdsa, "\"secp256k1\"", "\"P-256\""),
            "field BigXj[0].Curve: UnknownCurve",
            "a curve shardkeep does not support",
        ),
        (
            "empty_curve",
            text_edit(Ecdsa, "\"secp256k1\"", "\"\""),
            "field BigXj[0].Curve: UnknownCurve",
            "Go reads \"\" as the default curve; refused here",
        ),
        (
            "point_on_the_other_curve",
            text_edit(Eddsa, "\"ed25519\"", "\"secp256k1\""),
            "field BigXj[0]: PointCurve",
            "an ed25519 save data with a point named secp256k1",
        ),
        (
            "eddsa_point_without_curve",
            edit(Eddsa, |doc| {
                remove(at(doc, &[Step::Key("EDDSAPub")]), "Curve");
            }),
            "field EDDSAPub: PointCurve",
            "without Curve tss-lib reads secp256k1, not ed25519",
        ),
    ];
    for (name, payload, expect, comment) in cases {
        fail(dir, name, payload, expect, comment);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_arithmetic() {
        assert_eq!(add("999", "1"), "1000");
        assert_eq!(pow2(10), "1024");
        assert_eq!(from_hex("ff"), "255");
        assert_eq!(
            from_hex(ED25519_L),
            add(&pow2(252), "27742317777372353535851937790883648493")
        );
        assert_eq!(add(&from_hex(ED25519_P_MINUS_1), "20"), pow2(255));
    }
}
