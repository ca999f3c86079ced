//! The process-wide count of loaded party secrets. One test in its own
//! binary: the count is of the whole process, so no other test may load
//! save data beside it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use common::{Protocol, fixture};
use shardkeep_keydata::{
    loaded_other_party_secrets, loaded_party_secrets, loaded_party_secrets_of,
};

#[test]
fn save_data_counts_its_party_while_it_lives() {
    assert_eq!(loaded_party_secrets(), 0);
    let first = fixture(Protocol::Ecdsa, 0);
    let ecdsa_key = first.group_public_key();
    assert_eq!(loaded_party_secrets(), 1);
    assert_eq!(loaded_party_secrets_of(&ecdsa_key), 1);

    // A second copy of the same party is still one party.
    let again = fixture(Protocol::Ecdsa, 0);
    assert_eq!(loaded_party_secrets(), 1);

    // Another party of the group is a second secret of that group.
    let second = fixture(Protocol::Ecdsa, 1);
    assert_eq!(loaded_party_secrets_of(&ecdsa_key), 2);
    assert_eq!(loaded_other_party_secrets(&ecdsa_key, first.share_id()), 1);
    assert_eq!(loaded_other_party_secrets(&ecdsa_key, second.share_id()), 1);

    // A party of another group counts in the total, not in this group.
    let eddsa = fixture(Protocol::Eddsa, 0);
    assert_eq!(loaded_party_secrets(), 3);
    assert_eq!(loaded_party_secrets_of(&ecdsa_key), 2);
    assert_eq!(loaded_party_secrets_of(&eddsa.group_public_key()), 1);

    drop(second);
    assert_eq!(loaded_party_secrets_of(&ecdsa_key), 1);
    assert_eq!(loaded_other_party_secrets(&ecdsa_key, first.share_id()), 0);
    drop(first);
    assert_eq!(
        loaded_party_secrets_of(&ecdsa_key),
        1,
        "the copy still holds party 0"
    );
    drop(again);
    assert_eq!(loaded_party_secrets_of(&ecdsa_key), 0);
    drop(eddsa);
    assert_eq!(loaded_party_secrets(), 0);
}
