#!/usr/bin/env python3
"""Generates the JSON test vectors of shardkeep-keydata from the tss-lib fixtures.

Each vector is a header of `name: value` lines, an empty line, then the payload
bytes. `expect:` is `ok` or the error class the harness (crates/keydata/tests/
vectors.rs) derives from the error. Run from test-vectors/keydata/:
    python3 tools/json_vectors.py
The output is committed; the harness never runs this script.
"""
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
ED25519_L = 2**252 + 27742317777372353535851937790883648493
ED25519_P = 2**255 - 19


def fixture(protocol, party=0):
    with open(os.path.join(ROOT, "tss-lib", protocol, f"keygen_data_{party}.json"), "rb") as f:
        return f.read()


def compact(doc):
    # Python keeps dict order and prints integers exactly, like Go.
    return json.dumps(doc, separators=(",", ":")).encode()


def load(protocol, party=0):
    return json.loads(fixture(protocol, party))


def write(kind, name, payload, **header):
    lines = [f"{k.replace('_', '-')}: {v}" for k, v in header.items()]
    path = os.path.join(ROOT, kind, name + ".vec")
    with open(path, "wb") as f:
        f.write(("\n".join(lines) + "\n\n").encode() + payload)


def fail(name, payload, expect, comment):
    write("fail", "json_" + name, payload, expect=expect, comment=comment)


def edit(protocol, fn, party=0):
    doc = load(protocol, party)
    fn(doc)
    return compact(doc)


def text_edit(protocol, old, new, party=0, count=1):
    src = compact(load(protocol, party)).decode()
    assert src.count(old) >= count, old
    return src.replace(old, new, count).encode()


def main():
    ecdsa = compact(load("ecdsa"))
    eddsa = compact(load("eddsa"))
    e = load("ecdsa")
    d = load("eddsa")
    xi = str(e["Xi"])

    # ---- pass vectors
    def no_curve(doc):
        for p in doc["BigXj"] + [doc["ECDSAPub"]]:
            del p["Curve"]

    def no_new_fields(doc):
        for k in ["Alpha", "Beta", "P", "Q"]:
            del doc[k]
        del doc["PaillierSK"]["P"]
        del doc["PaillierSK"]["Q"]

    def null_new_fields(doc):
        for k in ["Alpha", "Beta", "P", "Q"]:
            doc[k] = None

    write("pass", "json_ecdsa_legacy_without_curve", edit("ecdsa", no_curve),
          expect="ok", writes="same", self_test="pass",
          comment="points written before tss-lib 1aa0a75 (2021-08): no Curve key, read as secp256k1")
    write("pass", "json_ecdsa_without_alpha_beta_p_q", edit("ecdsa", no_new_fields),
          expect="ok", writes="same", self_test="pass",
          comment="pre-params from an older tss-lib: no Alpha, Beta, P, Q, PaillierSK.P/Q")
    write("pass", "json_ecdsa_null_alpha_beta_p_q", edit("ecdsa", null_new_fields),
          expect="ok", writes="same", self_test="pass",
          comment="older data re-saved by a newer tss-lib: nil pointers written as null")
    reordered = load("eddsa")
    reordered = dict(reversed(list(reordered.items())))
    write("pass", "json_eddsa_reordered_and_indented",
          json.dumps(reordered, indent="\t").replace(",", " ,\r\n").encode(),
          expect="ok", writes="tss-lib/eddsa/keygen_data_0.json", self_test="pass",
          comment="members in reverse order, tabs and CRLF: read like Go does, written in declaration order")

    # ---- JSON syntax
    fail("trailing_data", ecdsa + b"\n{}", "json: TrailingData", "a second document after the first")
    fail("truncated", ecdsa[: len(ecdsa) // 2], "json: UnexpectedEnd", "cut in the middle")
    fail("empty", b"", "json: UnexpectedEnd", "no document")
    fail("duplicate_key", text_edit("eddsa", '"ShareID"', f'"Xi":{d["Xi"]},"ShareID"'),
         "json: DuplicateKey", "Xi twice (Go would keep the last one silently)")
    fail("negative_number", text_edit("eddsa", f'"Xi":{d["Xi"]}', f'"Xi":-{d["Xi"]}'),
         "json: NegativeNumber", "no save-data number is negative")
    fail("minus_zero", text_edit("eddsa", f'"Xi":{d["Xi"]}', '"Xi":-0'),
         "json: NegativeNumber", "-0 is JSON but never written by Go")
    fail("fraction", text_edit("ecdsa", f'"H1i":{e["H1i"]}', f'"H1i":{e["H1i"]}.0'),
         "json: NonIntegerNumber", "a fraction where tss-lib writes a big.Int")
    fail("exponent", text_edit("eddsa", f'"Xi":{d["Xi"]}', '"Xi":1e70'),
         "json: NonIntegerNumber", "an exponent where tss-lib writes a big.Int")
    fail("leading_zero", text_edit("eddsa", f'"Xi":{d["Xi"]}', f'"Xi":0{d["Xi"]}'),
         "json: LeadingZero", "not JSON, and never written by Go")
    fail("number_too_long", text_edit("ecdsa", f'"H1i":{e["H1i"]}', '"H1i":' + "1" * 618),
         "json: NumberTooLong", "618 digits: more than any 2048-bit number has")
    fail("string_escape", text_edit("eddsa", '"ed25519"', '"ed2\\u00355519"'),
         "json: StringEscape", "tss-lib's names never need escapes")
    fail("true_literal", text_edit("eddsa", f'"Xi":{d["Xi"]}', '"Xi":true'),
         "json: Unexpected", "booleans are not part of the schema")
    fail("too_deep", b"[" * 9 + b"]" * 9, "json: TooDeep", "nesting beyond the cap")
    fail("control_byte_in_string", text_edit("eddsa", '"ed25519"', '"ed25519\t"'),
         "json: InvalidStringByte", "a raw tab inside a string")

    # ---- schema
    fail("top_level_array", b"[]", "field (top level): WrongType", "not an object")
    fail("unknown_field", text_edit("eddsa", '"ShareID"', '"Extra":1,"ShareID"'),
         "field Extra: Unknown", "a field tss-lib does not write")
    fail("unknown_point_field", text_edit("eddsa", '"Coords"', '"Z":1,"Coords"'),
         "field BigXj[0].Z: Unknown", "an extra member in a point")
    fail("unknown_paillier_pk_field", edit("ecdsa", lambda doc: doc["PaillierPKs"][2].update(G=1)),
         "field PaillierPKs[2].G: Unknown", "an extra member in a Paillier public key")
    fail("no_group_key", edit("eddsa", lambda doc: doc.pop("EDDSAPub")),
         "UnknownProtocol", "neither ECDSAPub nor EDDSAPub")
    fail("missing_xi", edit("eddsa", lambda doc: doc.pop("Xi")), "field Xi: Missing", "no secret share")
    fail("missing_paillier_sk", edit("ecdsa", lambda doc: doc.pop("PaillierSK")),
         "field PaillierSK: Missing", "ECDSA without its Paillier key")
    fail("missing_lambda_n", edit("ecdsa", lambda doc: doc["PaillierSK"].pop("LambdaN")),
         "field PaillierSK.LambdaN: Missing", "Paillier key without LambdaN")
    fail("null_xi", edit("eddsa", lambda doc: doc.update(Xi=None)), "field Xi: WrongType",
         "a nil Xi is no key")
    fail("quoted_number", text_edit("eddsa", f'"Xi":{d["Xi"]}', '"Xi":"12345"'),
         "field Xi: WrongType", "Go's big.Int refuses quoted numbers too")
    fail("long_string", text_edit("eddsa", f'"Xi":{d["Xi"]}', f'"Xi":"{d["Xi"]}"'),
         "json: StringTooLong", "strings are names, at most 64 bytes")
    fail("ks_not_array", edit("eddsa", lambda doc: doc.update(Ks={})), "field Ks: WrongType",
         "Ks must be an array")
    fail("empty_ks", edit("eddsa", lambda doc: (doc.update(Ks=[], BigXj=[]))),
         "field Ks: Empty", "no parties")
    fail("bigxj_length_mismatch", edit("eddsa", lambda doc: doc["BigXj"].pop()),
         "field BigXj: LengthMismatch", "four public shares for five parties")
    fail("ntildej_length_mismatch", edit("ecdsa", lambda doc: doc["NTildej"].pop()),
         "field NTildej: LengthMismatch", "four Ntilde values for five parties")
    fail("paillier_pks_length_mismatch", edit("ecdsa", lambda doc: doc["PaillierPKs"].append({"N": 1})),
         "field PaillierPKs: LengthMismatch", "six Paillier keys for five parties")
    fail("number_too_wide", text_edit("ecdsa", f'"H1i":{e["H1i"]}', '"H1i":' + "9" * 617),
         "field H1i: TooWide", "617 digits but above 2^2048")
    fail("duplicate_party_id", edit("eddsa", lambda doc: doc["Ks"].__setitem__(3, doc["Ks"][1])),
         "field Ks: PartyId(DuplicatePartyId)", "two parties with one id")
    fail("duplicate_party_id_mod_order",
         edit("eddsa", lambda doc: doc["Ks"].__setitem__(3, doc["Ks"][1] + ED25519_L)),
         "field Ks: PartyId(DuplicatePartyId)", "ids equal modulo the ed25519 order")
    fail("zero_party_id", edit("eddsa", lambda doc: doc["Ks"].__setitem__(2, ED25519_L)),
         "field Ks[2]: PartyId(ZeroPartyId)", "the group order, zero after reduction")
    fail("party_id_too_long", edit("eddsa", lambda doc: doc["Ks"].__setitem__(2, 2**520)),
         "field Ks[2]: PartyId(PartyIdTooLong)", "a 66-byte id")
    fail("zero_share_id", edit("ecdsa", lambda doc: doc.update(ShareID=0)),
         "field ShareID: PartyId(ZeroPartyId)", "ShareID zero")
    fail("xi_zero", edit("eddsa", lambda doc: doc.update(Xi=0)),
         "field Xi: SecretShare(ZeroScalar)", "a zero share")
    fail("xi_not_below_order", edit("ecdsa", lambda doc: doc.update(Xi=SECP256K1_N + 5)),
         "field Xi: SecretShare(NonCanonicalScalar)", "Xi >= n (tss-lib reduces it)")
    fail("xi_too_wide", edit("ecdsa", lambda doc: doc.update(Xi=2**300)),
         "field Xi: SecretShare(NonCanonicalScalar)", "Xi wider than 256 bits")
    fail("point_off_curve",
         edit("ecdsa", lambda doc: doc["BigXj"][2]["Coords"].__setitem__(1, doc["BigXj"][2]["Coords"][1] + 1)),
         "field BigXj[2].Coords: InvalidPoint(InvalidPoint)", "y + 1")
    fail("point_coordinate_too_wide",
         edit("ecdsa", lambda doc: doc["ECDSAPub"]["Coords"].__setitem__(0, 2**256)),
         "field ECDSAPub.Coords: InvalidPoint(InvalidPoint)", "a 257-bit coordinate")
    fail("ed25519_small_order_point",
         edit("eddsa", lambda doc: doc["BigXj"][1].update(Coords=[0, ED25519_P - 1])),
         "field BigXj[1].Coords: InvalidPoint(TorsionPoint)", "(0, -1) has order 2")
    fail("ed25519_identity",
         edit("eddsa", lambda doc: doc["EDDSAPub"].update(Coords=[0, 1])),
         "field EDDSAPub.Coords: InvalidPoint(IdentityPoint)", "the neutral element")
    fail("coords_three_entries",
         edit("eddsa", lambda doc: doc["BigXj"][0]["Coords"].append(1)),
         "field BigXj[0].Coords: CoordsLength", "affine points have two coordinates")
    fail("unknown_curve", text_edit("ecdsa", '"secp256k1"', '"P-256"'),
         "field BigXj[0].Curve: UnknownCurve", "a curve shardkeep does not support")
    fail("empty_curve", text_edit("ecdsa", '"secp256k1"', '""'),
         "field BigXj[0].Curve: UnknownCurve", "Go reads \"\" as the default curve; refused here")
    fail("point_on_the_other_curve", text_edit("eddsa", '"ed25519"', '"secp256k1"', count=1),
         "field BigXj[0]: PointCurve", "an ed25519 save data with a point named secp256k1")
    fail("eddsa_point_without_curve",
         edit("eddsa", lambda doc: doc["EDDSAPub"].pop("Curve")),
         "field EDDSAPub: PointCurve", "without Curve tss-lib reads secp256k1, not ed25519")


if __name__ == "__main__":
    main()
