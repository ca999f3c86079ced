//! The binding a save data's envelopes sign, and regeneration of the save
//! data from a recovered share, the sealed archive and that binding.

use group::GroupEncoding;
use shardkeep_envelope::Binding;
use shardkeep_sss_core::{Curve, Secret};
use shardkeep_types::NodeVersion;
use subtle::ConstantTimeEq;

use crate::archive::{SealedArchive, open_save_data};
use crate::error::{BindingField, Error, Result};
use crate::save_data::LocalPartySaveData;

impl LocalPartySaveData {
    /// The binding every envelope of this node's shares signs: the curve,
    /// the group public key (compressed), the `ShareID` (big-endian,
    /// minimal), this party's public share `BigXj[self]` (compressed) and
    /// the hash of the sealed archive.
    ///
    /// # Errors
    /// [`Error::CurveMismatch`] when the archive is for another curve,
    /// [`Error::ShareIdNotInKs`], or [`Error::Binding`].
    pub fn binding(&self, archive: &SealedArchive) -> Result<Binding> {
        if archive.curve() != self.curve() {
            return Err(Error::CurveMismatch {
                expected: self.curve(),
                got: archive.curve(),
            });
        }
        Binding::new(
            self.curve(),
            self.group_public_key(),
            self.share_id().to_vec(),
            self.public_share()?,
            archive.hash(),
        )
        .map_err(Error::Binding)
    }
}

/// Rebuilds a node's save data from its recovered secret share `xi`, the
/// sealed protocol archive and the binding its envelopes signed (verified
/// by the caller, with the envelope's signature).
///
/// Refuses, before and after opening the archive, with nothing written
/// anywhere (this function does no I/O):
/// - a binding or archive for another curve ([`Error::CurveMismatch`]);
/// - an archive that does not hash to the signed value
///   ([`Error::ArchiveHashMismatch`]);
/// - a secret share whose public point is not the signed public share
///   ([`Error::NotThisNodesShare`]: a share of another node, version or
///   split);
/// - an archive that does not open with `xi` and `id`
///   ([`Error::ArchiveOpenFailed`]);
/// - an archive whose group key, `ShareID` or `BigXj[self]` differs from the
///   signed values ([`Error::BindingMismatch`]).
///
/// **The caller checks that the key version is current.** This function
/// does not know which version of the key is live: `id.version` only
/// selects the archive key, so a share and archive of a retired version
/// regenerate just as well as current ones. Before the result is written
/// back (for example by [`write_keystore`](crate::write_keystore), which
/// under [`WriteMode::Replace`](crate::WriteMode::Replace) overwrites the
/// node's keystore), check that `id.version` (the version of the envelope
/// the share came from) is the key's current version, so that a recovered
/// share of a retired version is never put back into service by accident.
///
/// # Errors
/// As listed, and the parse errors of [`LocalPartySaveData::from_json`].
pub fn regenerate<C: Curve>(
    xi: &Secret<C>,
    archive: &SealedArchive,
    binding: &Binding,
    id: &NodeVersion,
) -> Result<LocalPartySaveData> {
    for curve in [binding.curve(), archive.curve()] {
        if curve != C::ID {
            return Err(Error::CurveMismatch {
                expected: curve,
                got: C::ID,
            });
        }
    }
    // Public values: a plain comparison.
    if archive.hash() != *binding.archive_hash() {
        return Err(Error::ArchiveHashMismatch);
    }
    let signed_share = C::decode_point(binding.public_share())?;
    if !bool::from(xi.public_point().ct_eq(&signed_share)) {
        return Err(Error::NotThisNodesShare);
    }

    let data = open_save_data(xi, archive, id)?;
    if data.group_public_key() != binding.group_public_key() {
        return Err(Error::BindingMismatch(BindingField::GroupKey));
    }
    if data.share_id() != binding.party_id() {
        return Err(Error::BindingMismatch(BindingField::PartyId));
    }
    if data.public_share()? != signed_share.to_bytes().as_ref() {
        return Err(Error::BindingMismatch(BindingField::PublicShare));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use shardkeep_sss_core::{Ed25519, Secp256k1};
    use shardkeep_types::{KeyId, KeyVersion, NodeId};

    use super::*;
    use crate::test_support::{Step, at, copy, edited, fixture, id};

    fn same(a: &LocalPartySaveData, b: &LocalPartySaveData) -> bool {
        bool::from(ConstantTimeEq::ct_eq(a, b))
    }

    #[test]
    fn seal_bind_regenerate_round_trips_on_both_curves() {
        let data = fixture("ecdsa", 2);
        let archive = data.seal_archive(&id("node-2")).unwrap();
        let binding = data.binding(&archive).unwrap();
        let xi = data.secret_share::<Secp256k1>().unwrap();
        let back = regenerate(&xi, &archive, &binding, &id("node-2")).unwrap();
        assert!(same(&back, &data));
        assert_eq!(back.to_json().as_slice(), data.to_json().as_slice());

        let data = fixture("eddsa", 4);
        let archive = data.seal_archive(&id("node-4")).unwrap();
        let binding = data.binding(&archive).unwrap();
        let xi = data.secret_share::<Ed25519>().unwrap();
        assert!(same(
            &regenerate(&xi, &archive, &binding, &id("node-4")).unwrap(),
            &data
        ));
    }

    #[test]
    fn an_empty_archive_plaintext_is_refused() {
        // Found by keydata_archive_open: it once sealed to a body of just a
        // tag, which the parser (rightly) refuses.
        let xi = fixture("eddsa", 0).secret_share::<Ed25519>().unwrap();
        assert!(matches!(
            crate::archive::seal(&xi, &id("node-0"), [0; 32], b""),
            Err(Error::Archive(crate::FormatError::Framing(
                shardkeep_types::FramingError::LengthOutOfRange { field: "body", .. }
            )))
        ));
    }

    #[test]
    fn the_binding_carries_the_public_values() {
        let data = fixture("ecdsa", 1);
        let archive = data.seal_archive(&id("node-1")).unwrap();
        let binding = data.binding(&archive).unwrap();
        assert_eq!(binding.curve(), shardkeep_sss_core::CurveId::Secp256k1);
        assert_eq!(binding.group_public_key(), data.group_public_key());
        assert_eq!(binding.group_public_key().len(), 33);
        assert_eq!(binding.party_id(), data.share_id());
        assert_ne!(binding.party_id()[0], 0);
        assert_eq!(binding.public_share(), data.public_share().unwrap());
        assert_eq!(binding.archive_hash(), &archive.hash());
        assert_eq!(
            archive.hash(),
            shardkeep_envelope::archive_hash(archive.as_bytes())
        );
        let eddsa_archive = fixture("eddsa", 1).seal_archive(&id("node-1")).unwrap();
        assert!(matches!(
            data.binding(&eddsa_archive),
            Err(Error::CurveMismatch { .. })
        ));
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let data = fixture("ecdsa", 0);
        let node = id("node-0");
        let archive = data.seal_archive(&node).unwrap();
        let binding = data.binding(&archive).unwrap();
        let xi = data.secret_share::<Secp256k1>().unwrap();

        // Another archive of the same data: a fresh salt, another hash.
        let other_archive = data.seal_archive(&node).unwrap();
        assert!(matches!(
            regenerate(&xi, &other_archive, &binding, &node),
            Err(Error::ArchiveHashMismatch)
        ));
        // Another node's share.
        let other_xi = fixture("ecdsa", 1).secret_share::<Secp256k1>().unwrap();
        assert!(matches!(
            regenerate(&other_xi, &archive, &binding, &node),
            Err(Error::NotThisNodesShare)
        ));
        // Other ids: the archive key differs.
        for other in [
            NodeVersion {
                version: KeyVersion::new(2),
                ..node.clone()
            },
            NodeVersion {
                node_id: NodeId::new("node-1").unwrap(),
                ..node.clone()
            },
            NodeVersion {
                key_id: KeyId::new("key-2").unwrap(),
                ..node.clone()
            },
        ] {
            assert!(matches!(
                regenerate(&xi, &archive, &binding, &other),
                Err(Error::ArchiveOpenFailed)
            ));
        }
        // A binding on another curve.
        let eddsa = fixture("eddsa", 0);
        let eddsa_binding = eddsa.binding(&eddsa.seal_archive(&node).unwrap()).unwrap();
        assert!(matches!(
            regenerate(&xi, &archive, &eddsa_binding, &node),
            Err(Error::CurveMismatch { .. })
        ));
    }

    #[test]
    fn a_retired_version_regenerates_so_the_caller_checks_the_version() {
        // What the documentation warns about: nothing here knows that
        // version 1 was retired when version 2 came; its share and archive
        // regenerate as they always did. The version only selects the key.
        let data = fixture("ecdsa", 3);
        let retired = NodeVersion {
            version: KeyVersion::new(1),
            ..id("node-3")
        };
        let current = NodeVersion {
            version: KeyVersion::new(2),
            ..id("node-3")
        };
        let xi = data.secret_share::<Secp256k1>().unwrap();
        let old_archive = data.seal_archive(&retired).unwrap();
        let old_binding = data.binding(&old_archive).unwrap();
        let _current_archive = data.seal_archive(&current).unwrap();
        assert!(same(
            &regenerate(&xi, &old_archive, &old_binding, &retired).unwrap(),
            &data
        ));
        assert!(matches!(
            regenerate(&xi, &old_archive, &old_binding, &current),
            Err(Error::ArchiveOpenFailed)
        ));
    }

    #[test]
    fn an_archive_that_disagrees_with_the_binding_is_refused() {
        let data = fixture("eddsa", 0);
        let node = id("node-0");
        let xi = data.secret_share::<Ed25519>().unwrap();
        let archive = data.seal_archive(&node).unwrap();
        // A binding that signs another party id.
        let binding = Binding::new(
            data.curve(),
            data.group_public_key(),
            fixture("eddsa", 1).share_id().to_vec(),
            data.public_share().unwrap(),
            archive.hash(),
        )
        .unwrap();
        assert!(matches!(
            regenerate(&xi, &archive, &binding, &node),
            Err(Error::BindingMismatch(BindingField::PartyId))
        ));
        // An archive whose BigXj[self] is another party's.
        let forged = edited(&data, |v| {
            let other = copy(at(v, &[Step::Key("BigXj"), Step::Index(1)]));
            *at(v, &[Step::Key("BigXj"), Step::Index(0)]) = other;
        })
        .unwrap();
        let forged_archive = forged.seal_archive(&node).unwrap();
        let binding = Binding::new(
            data.curve(),
            data.group_public_key(),
            data.share_id().to_vec(),
            data.public_share().unwrap(),
            forged_archive.hash(),
        )
        .unwrap();
        assert!(matches!(
            regenerate(&xi, &forged_archive, &binding, &node),
            Err(Error::BindingMismatch(BindingField::PublicShare))
        ));
    }

    fn name() -> impl Strategy<Value = String> {
        "[A-Za-z0-9._:-]{1,64}"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn archives_open_only_with_their_share_and_ids(
            key in name(),
            node in name(),
            version in any::<u32>(),
            other_node in name(),
            other_xi in any::<[u8; 32]>(),
        ) {
            let data = fixture("eddsa", 3);
            let ids = NodeVersion {
                key_id: KeyId::new(key).unwrap(),
                node_id: NodeId::new(node).unwrap(),
                version: KeyVersion::new(version),
            };
            let archive = data.seal_archive(&ids).unwrap();
            let xi = data.secret_share::<Ed25519>().unwrap();
            let opened = open_save_data(&xi, &archive, &ids).unwrap();
            prop_assert!(same(&opened, &data));

            if other_node != ids.node_id.as_str() {
                let other = NodeVersion { node_id: NodeId::new(other_node).unwrap(), ..ids.clone() };
                prop_assert!(matches!(archive.open(&xi, &other), Err(Error::ArchiveOpenFailed)));
            }
            if let Ok(wrong) = Secret::<Ed25519>::from_be_bytes(&other_xi)
                && !bool::from(wrong.ct_eq(&xi))
            {
                prop_assert!(matches!(archive.open(&wrong, &ids), Err(Error::ArchiveOpenFailed)));
            }
        }

        #[test]
        fn mutated_archives_are_rejected_never_a_panic(
            at in 0usize..4096,
            xor in 1u8..=255,
            cut in proptest::option::of(0usize..4096),
        ) {
            let data = fixture("eddsa", 3);
            let node = id("node-3");
            let archive = data.seal_archive(&node).unwrap();
            let binding = data.binding(&archive).unwrap();
            let xi = data.secret_share::<Ed25519>().unwrap();
            let mut bytes = archive.into_bytes();
            let at = at % bytes.len();
            bytes[at] ^= xor;
            if let Some(cut) = cut {
                bytes.truncate(cut % bytes.len());
            }
            let result = SealedArchive::from_bytes(bytes).and_then(|mutated| {
                // Re-bind to the mutated bytes so that the AEAD itself is what refuses.
                let rebound = Binding::new(
                    binding.curve(),
                    binding.group_public_key().to_vec(),
                    binding.party_id().to_vec(),
                    binding.public_share().to_vec(),
                    mutated.hash(),
                )
                .map_err(Error::Binding)?;
                regenerate(&xi, &mutated, &rebound, &node)
            });
            prop_assert!(result.is_err());
        }
    }
}
