//! The split policy (t of n, how many shares the server keeps, which KEK
//! provider wraps them) and the exposure rule.
//!
//! A policy is validated when it is made, so a [`Policy`] value always
//! satisfies the procedure's rules: `2 <= t <= n`, server shares `< t` (the
//! server alone never recovers a node), external shares `>= t` (the
//! custodians alone always can). Its canonical encoding is hashed under
//! [`POLICY_TAG`]; every key version records the hash of the policy it was
//! made under, so a policy change shows which versions need regenerating.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};
use shardkeep_audit::EventType;
use shardkeep_storage::{
    GroupStore, MAX_AUDIT_APPENDS_PER_TRANSACTION, PolicyRecord, Storage, Transaction,
};
use shardkeep_types::{
    ActorId, CustodianId, FreeText, KeyId, Label, NodeId, ShareIndex, Threshold, Timestamp,
};
use shardkeep_wire::Reader;

use crate::error::Error;
use crate::registry::Role;
use crate::service::BackupService;

/// The policy encoding's magic.
pub const POLICY_MAGIC: &[u8; 8] = b"shkp-pol";
/// The policy encoding's format version.
pub const POLICY_VERSION: u8 = 1;
/// Domain tag of the policy hash.
pub const POLICY_TAG: &[u8] = b"shardkeep/policy/v1";

/// How shares of one node's `Xi` are split and where they go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Policy {
    threshold: Threshold,
    server_shares: u8,
    kek_provider: Label,
}

impl Policy {
    /// A validated policy: `threshold` (t of n), the first `server_shares`
    /// indices kept by the server under `kek_provider`'s per-slot KEKs, the
    /// rest at one external custodian each.
    ///
    /// # Errors
    /// [`Error::PolicyServerShares`] when the server would hold `t` or more
    /// shares, [`Error::PolicyExternalShares`] when the custodians would
    /// hold fewer than `t`.
    pub fn new(
        threshold: Threshold,
        server_shares: u8,
        kek_provider: Label,
    ) -> Result<Self, Error> {
        if server_shares >= threshold.t() {
            return Err(Error::PolicyServerShares {
                server: server_shares,
                t: threshold.t(),
            });
        }
        let external = threshold.n() - server_shares;
        if external < threshold.t() {
            return Err(Error::PolicyExternalShares {
                external,
                t: threshold.t(),
            });
        }
        Ok(Self {
            threshold,
            server_shares,
            kek_provider,
        })
    }

    /// Hybrid mode as the procedure recommends: 3 of 5, 2 on the server.
    ///
    /// # Errors
    /// None in practice (the values are valid); the signature matches
    /// [`Policy::new`].
    pub fn hybrid(kek_provider: Label) -> Result<Self, Error> {
        Self::new(Threshold::new(3, 5)?, 2, kek_provider)
    }

    /// t of n.
    #[must_use]
    pub const fn threshold(&self) -> Threshold {
        self.threshold
    }

    /// How many shares the server keeps (indices `1..=server_shares`).
    #[must_use]
    pub const fn server_shares(&self) -> u8 {
        self.server_shares
    }

    /// How many shares go to external custodians.
    #[must_use]
    pub fn external_shares(&self) -> u8 {
        self.threshold.n() - self.server_shares
    }

    /// The KEK provider that wraps the server shares (e.g. `local-key-file`,
    /// `pkcs11`).
    #[must_use]
    pub const fn kek_provider(&self) -> &Label {
        &self.kek_provider
    }

    /// Whether `index` is held by the server under this policy.
    #[must_use]
    pub fn is_server_index(&self, index: ShareIndex) -> bool {
        index.get() <= self.server_shares
    }

    /// The server-held indices, in order.
    pub fn server_indices(&self) -> impl Iterator<Item = ShareIndex> + '_ {
        self.threshold
            .indices()
            .filter(|index| self.is_server_index(*index))
    }

    /// The external indices, in order.
    pub fn external_indices(&self) -> impl Iterator<Item = ShareIndex> + '_ {
        self.threshold
            .indices()
            .filter(|index| !self.is_server_index(*index))
    }

    /// The canonical encoding: magic, version, t, n, server shares, the KEK
    /// provider (length-prefixed).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 4 + 1 + self.kek_provider.as_str().len());
        out.extend_from_slice(POLICY_MAGIC);
        out.push(POLICY_VERSION);
        out.push(self.threshold.t());
        out.push(self.threshold.n());
        out.push(self.server_shares);
        self.kek_provider.encode_prefixed(&mut out);
        out
    }

    /// Parses and validates a canonical encoding.
    ///
    /// # Errors
    /// [`Error::Framing`] for bad magic, version, truncation or trailing
    /// bytes; [`Error::Types`] for an invalid threshold or name; the
    /// validation errors of [`Policy::new`].
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        r.magic_and_version("policy", POLICY_MAGIC, POLICY_VERSION)?;
        let t = r.u8("t")?;
        let n = r.u8("n")?;
        let server_shares = r.u8("server shares")?;
        let kek_provider = Label::decode_prefixed(&mut r)?;
        r.finish("policy")?;
        let threshold = Threshold::new(usize::from(t), usize::from(n))?;
        Self::new(threshold, server_shares, kek_provider)
    }

    /// `SHA-256(POLICY_TAG || encoding)`: what key versions record.
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(POLICY_TAG);
        hash.update(self.encode());
        hash.finalize().into()
    }
}

/// One node of a group key as the exposure rule sees it: the shares of its
/// current backup held by the server and by each custodian entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCustody {
    /// The node.
    pub node: NodeId,
    /// Its split's t.
    pub t: u8,
    /// Shares the server still holds (soft-deleted ones count: a rollback
    /// restores them; hard-deleted ones do not).
    pub server_shares: u8,
    /// Shares per custodian entity.
    pub custodians: BTreeMap<CustodianId, u8>,
}

/// A custodian entity that, with the server's shares, could rebuild more
/// nodes' shares of one group key than the group's tss-lib threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    /// The custodian entity.
    pub custodian: CustodianId,
    /// The nodes where the server's shares plus this custodian's reach t.
    pub nodes: BTreeSet<NodeId>,
    /// How many such nodes the group tolerates: its tss-lib threshold (the
    /// polynomial degree; degree + 1 shares sign).
    pub allowed: u16,
}

/// The exposure rule, exactly: for each custodian entity C, count the nodes
/// of one group key where the server's shares plus C's shares reach t; a
/// count above the tss-lib threshold means the server and C together could
/// rebuild the group key. Returns every such custodian (empty: the rule
/// holds). A node listed twice counts once.
#[must_use]
pub fn exposures(tss_degree: u16, nodes: &[NodeCustody]) -> Vec<Exposure> {
    let mut reach: BTreeMap<&CustodianId, BTreeSet<NodeId>> = BTreeMap::new();
    for node in nodes {
        for (custodian, shares) in &node.custodians {
            if u16::from(node.server_shares) + u16::from(*shares) >= u16::from(node.t) {
                reach
                    .entry(custodian)
                    .or_default()
                    .insert(node.node.clone());
            }
        }
    }
    reach
        .into_iter()
        .filter(|(_, nodes)| nodes.len() > usize::from(tss_degree))
        .map(|(custodian, nodes)| Exposure {
            custodian: custodian.clone(),
            nodes,
            allowed: tss_degree,
        })
        .collect()
}

/// [`exposures`] as a refusal: the first exposed custodian, with what the
/// operator can do about it.
///
/// # Errors
/// [`Error::Exposure`].
pub fn check_exposure(key_id: &KeyId, tss_degree: u16, nodes: &[NodeCustody]) -> Result<(), Error> {
    match exposures(tss_degree, nodes).into_iter().next() {
        None => Ok(()),
        Some(exposure) => Err(Error::Exposure {
            key_id: key_id.clone(),
            custodian: exposure.custodian,
            nodes: exposure.nodes.len(),
            allowed: exposure.allowed,
        }),
    }
}

/// A policy as set: the validated policy, its hash, and who set it when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentPolicy {
    /// The policy.
    pub policy: Policy,
    /// `SHA-256(POLICY_TAG || encoding)`, as key versions record it.
    pub hash: [u8; 32],
    /// When it was set.
    pub set_at: Timestamp,
    /// Who set it.
    pub set_by: ActorId,
}

impl CurrentPolicy {
    /// Decodes a stored policy and checks it against its stored hash.
    ///
    /// # Errors
    /// [`Error::PolicyCorrupt`] when the encoding does not decode to a valid
    /// policy or does not hash to the stored hash.
    pub(crate) fn from_record(record: PolicyRecord) -> Result<Self, Error> {
        let corrupt = || Error::PolicyCorrupt { hash: record.hash };
        let policy = Policy::decode(&record.encoding).map_err(|_| corrupt())?;
        // Public hashes: a plain comparison.
        if policy.hash() != record.hash {
            return Err(corrupt());
        }
        Ok(Self {
            policy,
            hash: record.hash,
            set_at: record.set_at,
            set_by: record.set_by,
        })
    }
}

/// The settings of a policy to set; [`BackupService::set_policy`]
/// validates them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySettings {
    /// t of n.
    pub threshold: Threshold,
    /// How many shares the server keeps (indices `1..=server_shares`).
    pub server_shares: u8,
    /// The KEK provider wrapping the server shares.
    pub kek_provider: Label,
}

impl<S: Storage> BackupService<S> {
    /// Sets the deployment's first split policy (a security person does
    /// it). Once a policy is in force, a change (threshold, server and
    /// external shares, key wrapping provider) needs approvals:
    /// [`set_policy_approved`](Self::set_policy_approved). The settings are
    /// validated here: the server never holds `t` shares, the custodians
    /// always hold at least `t`, and one generate can audit every share.
    /// The policy is stored with its hash and audited; versions made under
    /// an older policy show it by their recorded hash.
    ///
    /// # Errors
    /// The refusals of authorization (audited);
    /// [`Error::PolicyChangeNeedsApproval`] (audited);
    /// [`Error::PolicyServerShares`], [`Error::PolicyExternalShares`],
    /// [`Error::PolicyTooManyShares`]; storage and audit errors.
    pub async fn set_policy(
        &self,
        actor: &ActorId,
        settings: PolicySettings,
    ) -> Result<CurrentPolicy, Error> {
        let now = self.now();
        let tx = self.begin().await?;
        let (mut tx, _) = self
            .authorize_or_refuse(tx, actor, &[Role::Security], None)
            .await?;
        let policy = Policy::new(
            settings.threshold,
            settings.server_shares,
            settings.kek_provider,
        )?;
        check_auditable(&policy)?;
        if let Some(current) = tx.current_policy().await? {
            let error = Error::PolicyChangeNeedsApproval {
                current: current.hash,
            };
            return self
                .refuse_as(tx, EventType::Policy, actor, None, error)
                .await;
        }
        let current = self.store_policy(&mut tx, actor, policy, now, None).await?;
        tx.commit().await?;
        Ok(current)
    }

    /// Stores `policy` as the one in force and appends its `policy` audit
    /// record (with `approvals`, when given, in its detail) inside `tx`;
    /// the caller commits.
    pub(crate) async fn store_policy(
        &self,
        tx: &mut S::Transaction,
        actor: &ActorId,
        policy: Policy,
        now: Timestamp,
        approvals: Option<&str>,
    ) -> Result<CurrentPolicy, Error> {
        let record = PolicyRecord {
            hash: policy.hash(),
            encoding: policy.encode(),
            set_at: now,
            set_by: actor.clone(),
        };
        tx.set_policy(&record).await?;
        let mut audit = self.record(EventType::Policy, actor, None);
        audit.threshold = Some(policy.threshold());
        let mut detail = format!(
            "policy {}: {} of {}, {} server share(s) under {}, {} external",
            hex::encode(record.hash),
            policy.threshold().t(),
            policy.threshold().n(),
            policy.server_shares(),
            policy.kek_provider(),
            policy.external_shares(),
        );
        if let Some(approvals) = approvals {
            detail.push_str("; ");
            detail.push_str(approvals);
        }
        audit.detail = Some(FreeText::sanitized(&detail)?);
        Self::audit(tx, &audit).await?;
        Ok(CurrentPolicy {
            policy,
            hash: record.hash,
            set_at: record.set_at,
            set_by: record.set_by,
        })
    }

    /// The policy in force, checked against its stored hash; `None` before
    /// one is set. Any registered, active person may read it.
    ///
    /// # Errors
    /// The refusals of authorization (audited); [`Error::PolicyCorrupt`];
    /// storage errors.
    pub async fn current_policy(&self, actor: &ActorId) -> Result<Option<CurrentPolicy>, Error> {
        let tx = self.begin_read_only().await?;
        let (mut tx, _) = self
            .authorize_or_refuse(tx, actor, &Role::ALL, None)
            .await?;
        let record = tx.current_policy().await?;
        drop(tx);
        record.map(CurrentPolicy::from_record).transpose()
    }
}

/// Refuses a policy with more shares than one generate can audit: it
/// appends one record per share in one transaction.
///
/// # Errors
/// [`Error::PolicyTooManyShares`].
pub(crate) fn check_auditable(policy: &Policy) -> Result<(), Error> {
    let n = policy.threshold().n();
    if usize::from(n) > MAX_AUDIT_APPENDS_PER_TRANSACTION {
        return Err(Error::PolicyTooManyShares {
            n,
            max: MAX_AUDIT_APPENDS_PER_TRANSACTION,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn local() -> Label {
        Label::new("local-key-file").unwrap()
    }

    fn node(name: &str, server: u8, custodians: &[(&str, u8)]) -> NodeCustody {
        NodeCustody {
            node: NodeId::new(name).unwrap(),
            t: 3,
            server_shares: server,
            custodians: custodians
                .iter()
                .map(|(c, n)| (CustodianId::new(*c).unwrap(), *n))
                .collect(),
        }
    }

    #[test]
    fn hybrid_is_three_of_five_with_two_on_the_server() {
        let policy = Policy::hybrid(local()).unwrap();
        assert_eq!((policy.threshold().t(), policy.threshold().n()), (3, 5));
        assert_eq!(policy.server_shares(), 2);
        assert_eq!(policy.external_shares(), 3);
        let server: Vec<u8> = policy.server_indices().map(ShareIndex::get).collect();
        let external: Vec<u8> = policy.external_indices().map(ShareIndex::get).collect();
        assert_eq!(server, [1, 2]);
        assert_eq!(external, [3, 4, 5]);
    }

    #[test]
    fn the_server_never_holds_t_shares() {
        let error = Policy::new(Threshold::new(3, 5).unwrap(), 3, local()).unwrap_err();
        assert!(matches!(
            error,
            Error::PolicyServerShares { server: 3, t: 3 }
        ));
    }

    #[test]
    fn custodians_always_hold_t_shares() {
        let error = Policy::new(Threshold::new(3, 4).unwrap(), 2, local()).unwrap_err();
        assert!(matches!(
            error,
            Error::PolicyExternalShares { external: 2, t: 3 }
        ));
    }

    #[test]
    fn encoding_is_pinned() {
        let policy = Policy::hybrid(local()).unwrap();
        assert_eq!(
            hex::encode(policy.encode()),
            format!(
                "{}01030502{:02x}{}",
                hex::encode(POLICY_MAGIC),
                local().as_str().len(),
                hex::encode(local().as_str())
            )
        );
        assert_eq!(Policy::decode(&policy.encode()).unwrap(), policy);
    }

    #[test]
    fn decode_refuses_trailing_bytes_and_invalid_policies() {
        let policy = Policy::hybrid(local()).unwrap();
        let mut trailing = policy.encode();
        trailing.push(0);
        assert!(matches!(Policy::decode(&trailing), Err(Error::Framing(_))));
        let mut server_majority = policy.encode();
        server_majority[11] = 3;
        assert!(matches!(
            Policy::decode(&server_majority),
            Err(Error::PolicyServerShares { .. })
        ));
        let mut version = policy.encode();
        version[8] = 2;
        assert!(matches!(Policy::decode(&version), Err(Error::Framing(_))));
    }

    #[test]
    fn exposure_counts_nodes_where_server_plus_one_custodian_reach_t() {
        // A group of 5 nodes with tss-lib threshold 2 (3 parties sign).
        // "escrow" holds a share of nodes a, b and c: with the server's two
        // shares it rebuilds three Xi, enough for the group key.
        let nodes = [
            node("a", 2, &[("escrow", 1), ("cust-1", 1), ("cold", 1)]),
            node("b", 2, &[("escrow", 1), ("cust-2", 1), ("cold-2", 1)]),
            node("c", 2, &[("escrow", 1), ("cust-3", 1), ("cold-3", 1)]),
        ];
        let exposed = exposures(2, &nodes);
        assert_eq!(exposed.len(), 1);
        assert_eq!(exposed[0].custodian.as_str(), "escrow");
        assert_eq!(exposed[0].nodes.len(), 3);
        let error = check_exposure(&KeyId::new("wallet").unwrap(), 2, &nodes).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("escrow"), "{message}");
        assert!(message.contains("disjoint custodian sets"), "{message}");
        assert!(message.contains("zero retention"), "{message}");
    }

    #[test]
    fn exposure_allows_up_to_the_tss_threshold() {
        let nodes = [
            node("a", 2, &[("escrow", 1)]),
            node("b", 2, &[("escrow", 1)]),
        ];
        assert!(exposures(2, &nodes).is_empty());
    }

    #[test]
    fn zero_retention_removes_a_node_from_the_count() {
        // Node c's server shares were hard-deleted: escrow alone cannot
        // reach t there.
        let nodes = [
            node("a", 2, &[("escrow", 1)]),
            node("b", 2, &[("escrow", 1)]),
            node("c", 0, &[("escrow", 1)]),
        ];
        assert!(exposures(2, &nodes).is_empty());
    }

    #[test]
    fn a_node_counts_once_however_often_it_is_listed() {
        let nodes = [
            node("a", 2, &[("escrow", 1)]),
            node("a", 2, &[("escrow", 1)]),
            node("b", 2, &[("escrow", 1)]),
        ];
        assert!(exposures(2, &nodes).is_empty());
    }

    proptest! {
        #[test]
        fn every_valid_policy_round_trips(t in 2u8..=20, extra in 0u8..=20, server in 0u8..20) {
            let n = t.saturating_add(extra);
            let threshold = Threshold::new(usize::from(t), usize::from(n)).unwrap();
            match Policy::new(threshold, server, local()) {
                Ok(policy) => {
                    prop_assert!(policy.server_shares() < t);
                    prop_assert!(policy.external_shares() >= t);
                    prop_assert_eq!(Policy::decode(&policy.encode()).unwrap(), policy);
                }
                Err(_) => prop_assert!(server >= t || n - server < t),
            }
        }

        #[test]
        fn the_rule_is_exactly_a_count_over_the_degree(
            reach in proptest::collection::vec(any::<bool>(), 0..12),
            degree in 0u16..8,
        ) {
            let nodes: Vec<NodeCustody> = reach
                .iter()
                .enumerate()
                .map(|(i, reaches)| node(&format!("n{i}"), if *reaches { 2 } else { 1 }, &[("c", 1)]))
                .collect();
            let count = reach.iter().filter(|r| **r).count();
            prop_assert_eq!(exposures(degree, &nodes).is_empty(), count <= usize::from(degree));
        }
    }
}
