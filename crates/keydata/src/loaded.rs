//! A process-wide count of the parties whose secret share `Xi` is held in
//! live save data, so that an operation which must hold one party's secret
//! only (a drill, a recovery: the other parties answer from their own
//! nodes) can check it before it starts.
//!
//! Every [`LocalPartySaveData`](crate::LocalPartySaveData) registers its
//! party (curve, group key, `ShareID`) when it is created and unregisters
//! it when dropped; two live copies of one party's data count once.

use std::sync::{Mutex, PoisonError};

/// A party of a group: public values only.
#[derive(Clone, PartialEq, Eq)]
struct Party {
    curve: u8,
    group_key: Vec<u8>,
    share_id: Vec<u8>,
}

/// Each party held, with the number of live save data holding it.
static HELD: Mutex<Vec<(Party, usize)>> = Mutex::new(Vec::new());

fn held() -> std::sync::MutexGuard<'static, Vec<(Party, usize)>> {
    // The list stays consistent whatever panicked while it was locked:
    // every update is one push, one increment or one removal.
    HELD.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One save data's registration of its party; unregisters on drop.
pub(crate) struct SecretHold {
    party: Party,
}

impl SecretHold {
    pub(crate) fn new(curve: u8, group_key: Vec<u8>, share_id: Vec<u8>) -> Self {
        let party = Party {
            curve,
            group_key,
            share_id,
        };
        let mut held = held();
        match held.iter_mut().find(|(p, _)| *p == party) {
            Some((_, count)) => *count += 1,
            None => held.push((party.clone(), 1)),
        }
        Self { party }
    }
}

impl Drop for SecretHold {
    fn drop(&mut self) {
        let mut held = held();
        if let Some(at) = held.iter().position(|(p, _)| *p == self.party) {
            held[at].1 -= 1;
            if held[at].1 == 0 {
                held.swap_remove(at);
            }
        }
    }
}

/// How many distinct parties' secret shares live save data in this process
/// holds, over every group.
#[must_use]
pub fn loaded_party_secrets() -> usize {
    held().len()
}

/// How many distinct parties of the group with public key
/// `group_public_key` (compressed, as
/// [`LocalPartySaveData::group_public_key`](crate::LocalPartySaveData::group_public_key)
/// returns it) have their secret share held in live save data in this
/// process. More than one is more than any node needs: with `t` of them the
/// group key can be rebuilt.
#[must_use]
pub fn loaded_party_secrets_of(group_public_key: &[u8]) -> usize {
    held()
        .iter()
        .filter(|(p, _)| p.group_key == group_public_key)
        .count()
}

/// How many parties of the group with public key `group_public_key`, other
/// than the party whose `ShareID` is `party_id`, have their secret share
/// held in live save data in this process. An operation that recovers or
/// drills `party_id`'s share and self-tests it needs none: its peers answer
/// from their own nodes.
#[must_use]
pub fn loaded_other_party_secrets(group_public_key: &[u8], party_id: &[u8]) -> usize {
    held()
        .iter()
        .filter(|(p, _)| p.group_key == group_public_key && p.share_id != party_id)
        .count()
}
