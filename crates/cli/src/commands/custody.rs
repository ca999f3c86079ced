//! Delivery, receipts and inventory: the operator's calls and the
//! custodian's offline answers (made by the backup crate's
//! `CustodianCredentials`, never here).

use rand::{SeedableRng as _, TryRng as _};
use serde::Serialize;
use shardkeep_backup::{
    InventoryChallenge, MAX_INVENTORY_CHALLENGE_LEN, MAX_INVENTORY_PROOF_LEN, container_hash,
};
use shardkeep_envelope::{MAX_CONTAINER_LEN, MAX_RECEIPT_LEN};
use shardkeep_grpc::proto;
use shardkeep_types::Timestamp;
use zeroize::Zeroizing;

use super::{Context, CustodianTool, VersionReport, node_version, proto_slot, shown, when};
use crate::cli::{DeliverCommand, InventoryCommand, ReceiptCommand, SlotArgs};
use crate::client;
use crate::error::{Error, ExitCode};
use crate::files::{self, Access};
use crate::output::{Report, line};

/// A share slot in reports.
#[derive(Debug, Serialize)]
struct SlotReport {
    version: VersionReport,
    index: u32,
}

impl SlotReport {
    fn of(args: &SlotArgs) -> Result<Self, Error> {
        Ok(Self {
            version: VersionReport::of(&node_version(&args.version)?),
            index: args.index,
        })
    }

    fn of_proto(slot: Option<&proto::ShareSlot>) -> Self {
        Self {
            version: VersionReport::of_proto(slot.and_then(|slot| slot.version.as_ref())),
            index: slot.map_or(0, |slot| slot.index),
        }
    }
}

impl core::fmt::Display for SlotReport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} #{}", self.version, self.index)
    }
}

/// `deliver record`.
#[derive(Debug, Serialize)]
struct DeliveryRecorded {
    command: &'static str,
    slot: SlotReport,
    container_hash: String,
    /// `sent` or `failed`.
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<String>,
}

impl Report for DeliveryRecorded {
    fn human(&self, out: &mut String) {
        match &self.failure_reason {
            None => line!(
                out,
                "recorded: container {} for {} handed over (awaiting the receipt)",
                self.container_hash,
                self.slot
            ),
            Some(reason) => line!(
                out,
                "recorded: delivery of container {} for {} FAILED: {reason}",
                self.container_hash,
                self.slot
            ),
        }
    }
}

/// `deliver confirm`.
#[derive(Debug, Serialize)]
struct ReceiptConfirmed {
    command: &'static str,
    slot: SlotReport,
    custodian: String,
    person: String,
    received: bool,
    failure_reason: String,
    delivery_complete: bool,
}

impl Report for ReceiptConfirmed {
    fn human(&self, out: &mut String) {
        if self.received {
            line!(
                out,
                "confirmed: {} received {} (receipt signed by {})",
                self.custodian,
                self.slot,
                self.person
            );
        } else {
            line!(
                out,
                "{} reports {} NOT received: {}",
                self.custodian,
                self.slot,
                self.failure_reason
            );
        }
        if self.delivery_complete {
            line!(out, "every external share of the version is confirmed");
        }
    }
}

pub(super) async fn deliver(context: &Context, command: DeliverCommand) -> Result<ExitCode, Error> {
    let config = context.config()?;
    match command {
        DeliverCommand::Record {
            slot,
            container,
            failed,
        } => {
            let wire_slot = proto_slot(&slot)?;
            let bytes = files::read_capped(&container, "container", MAX_CONTAINER_LEN)?;
            let hash = container_hash(&bytes);
            let mut client = client::connect(config.server()?).await?;
            client
                .record_delivery(proto::RecordDeliveryRequest {
                    slot: Some(wire_slot),
                    container_hash: hash.to_vec(),
                    failure_reason: failed.clone().unwrap_or_default(),
                })
                .await?;
            context.output.report(&DeliveryRecorded {
                command: "deliver record",
                slot: SlotReport::of(&slot)?,
                container_hash: hex::encode(hash),
                result: if failed.is_some() { "failed" } else { "sent" },
                failure_reason: failed,
            })?;
        }
        DeliverCommand::Confirm { slot, receipt } => {
            let wire_slot = proto_slot(&slot)?;
            let receipt = files::read_capped(&receipt, "receipt", MAX_RECEIPT_LEN)?;
            let mut client = client::connect(config.server()?).await?;
            let confirmed = client
                .confirm_receipt(proto::ConfirmReceiptRequest {
                    slot: Some(wire_slot),
                    receipt,
                })
                .await?
                .into_inner();
            context.output.report(&ReceiptConfirmed {
                command: "deliver confirm",
                slot: SlotReport::of(&slot)?,
                custodian: confirmed.custodian,
                person: confirmed.person,
                received: confirmed.received,
                failure_reason: confirmed.failure_reason,
                delivery_complete: confirmed.delivery_complete,
            })?;
        }
    }
    Ok(ExitCode::Ok)
}

/// A file the custodian's tool wrote.
#[derive(Debug, Serialize)]
struct CustodianFile {
    command: &'static str,
    custodian: String,
    person: String,
    container_hash: String,
    out: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    challenge: Option<ChallengeReport>,
}

impl Report for CustodianFile {
    fn human(&self, out: &mut String) {
        let what = if self.challenge.is_some() {
            "inventory proof"
        } else {
            "receipt"
        };
        line!(
            out,
            "{what} for container {} signed by {} for {}: {}",
            self.container_hash,
            self.person,
            self.custodian,
            self.out
        );
        line!(out, "hand it to the operator");
    }
}

pub(super) fn receipt(context: &Context, command: ReceiptCommand) -> Result<ExitCode, Error> {
    let ReceiptCommand::Sign {
        container,
        out,
        force,
    } = command;
    let custodian = CustodianTool::unlock(CustodianTool::config(context)?)?;
    let container_bytes = files::read_capped(&container, "container", MAX_CONTAINER_LEN)?;
    let credentials = custodian.credentials()?;
    let trusted = custodian.config.service_signer()?.trusted()?;
    let receipt = credentials
        .receipt(&container_bytes, &trusted, Timestamp::now())
        .map_err(Error::verification("the container does not open or verify"))?;
    files::write_new(&out, &receipt, force, Access::Public)?;
    context.output.report(&CustodianFile {
        command: "receipt sign",
        custodian: credentials.custodian.as_str().to_owned(),
        person: credentials.person.as_str().to_owned(),
        container_hash: hex::encode(container_hash(&container_bytes)),
        out: shown(&out),
        challenge: None,
    })?;
    Ok(ExitCode::Ok)
}

/// An inventory challenge in reports.
#[derive(Debug, Serialize)]
struct ChallengeReport {
    slot: SlotReport,
    custodian: String,
    envelope_id: String,
    expires_at_unix: u64,
}

/// `inventory challenge`.
#[derive(Debug, Serialize)]
struct ChallengeIssued {
    command: &'static str,
    slot: SlotReport,
    custodian: String,
    expires_at_unix: u64,
    out: String,
}

impl Report for ChallengeIssued {
    fn human(&self, out: &mut String) {
        line!(
            out,
            "challenge for {} (custodian {}) written to {}; it lapses at {}",
            self.slot,
            self.custodian,
            self.out,
            when(self.expires_at_unix)
        );
    }
}

/// `inventory confirm`.
#[derive(Debug, Serialize)]
struct InventoryConfirmed {
    command: &'static str,
    slot: SlotReport,
    custodian: String,
    person: String,
    confirmed_at_unix: u64,
}

impl Report for InventoryConfirmed {
    fn human(&self, out: &mut String) {
        line!(
            out,
            "custody of {} by {} confirmed at {} (proof signed by {})",
            self.slot,
            self.custodian,
            when(self.confirmed_at_unix),
            self.person
        );
    }
}

pub(super) async fn inventory(
    context: &Context,
    command: InventoryCommand,
) -> Result<ExitCode, Error> {
    match command {
        InventoryCommand::Challenge { slot, out, force } => {
            let config = context.config()?;
            let wire_slot = proto_slot(&slot)?;
            let mut client = client::connect(config.server()?).await?;
            let issued = client
                .issue_inventory_challenge(proto::IssueInventoryChallengeRequest {
                    slot: Some(wire_slot),
                })
                .await?
                .into_inner();
            files::write_new(&out, &issued.challenge, force, Access::Public)?;
            context.output.report(&ChallengeIssued {
                command: "inventory challenge",
                slot: SlotReport::of(&slot)?,
                custodian: issued.custodian,
                expires_at_unix: issued.expires_at_unix,
                out: shown(&out),
            })?;
        }
        InventoryCommand::Prove {
            challenge,
            container,
            out,
            force,
        } => prove(context, &challenge, &container, &out, force)?,
        InventoryCommand::Confirm { proof } => {
            let config = context.config()?;
            let proof = files::read_capped(&proof, "inventory proof", MAX_INVENTORY_PROOF_LEN)?;
            let mut client = client::connect(config.server()?).await?;
            let confirmed = client
                .confirm_inventory(proto::ConfirmInventoryRequest { proof })
                .await?
                .into_inner();
            context.output.report(&InventoryConfirmed {
                command: "inventory confirm",
                slot: SlotReport::of_proto(confirmed.slot.as_ref()),
                custodian: confirmed.custodian,
                person: confirmed.person,
                confirmed_at_unix: confirmed.confirmed_at_unix,
            })?;
        }
    }
    Ok(ExitCode::Ok)
}

/// `inventory prove`: the custodian's signed answer.
fn prove(
    context: &Context,
    challenge: &std::path::Path,
    container: &std::path::Path,
    out: &std::path::Path,
    force: bool,
) -> Result<(), Error> {
    let challenge_bytes = files::read_capped(
        challenge,
        "inventory challenge",
        MAX_INVENTORY_CHALLENGE_LEN,
    )?;
    let decoded = InventoryChallenge::decode(&challenge_bytes)
        .map_err(Error::verification("the challenge does not decode"))?;
    let custodian = CustodianTool::unlock(CustodianTool::config(context)?)?;
    let container_bytes = files::read_capped(container, "container", MAX_CONTAINER_LEN)?;
    let credentials = custodian.credentials()?;
    let trusted = custodian.config.service_signer()?.trusted()?;
    // The proof's nonce is hedged with fresh system randomness.
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::rngs::SysRng
        .try_fill_bytes(seed.as_mut_slice())
        .map_err(|_| Error::Randomness)?;
    let mut rng = rand::rngs::ChaCha20Rng::from_seed(*seed);
    let proof = credentials
        .inventory_proof(
            &challenge_bytes,
            &container_bytes,
            &trusted,
            Timestamp::now(),
            &mut rng,
        )
        .map_err(Error::verification(
            "the challenge cannot be answered from this container",
        ))?;
    files::write_new(out, &proof, force, Access::Public)?;
    let slot = &decoded.slot;
    context.output.report(&CustodianFile {
        command: "inventory prove",
        custodian: credentials.custodian.as_str().to_owned(),
        person: credentials.person.as_str().to_owned(),
        container_hash: hex::encode(container_hash(&container_bytes)),
        out: shown(out),
        challenge: Some(ChallengeReport {
            slot: SlotReport {
                version: VersionReport::of(&slot.node_version()),
                index: u32::from(slot.index.get()),
            },
            custodian: decoded.custodian.as_str().to_owned(),
            envelope_id: hex::encode(decoded.envelope_id.as_bytes()),
            expires_at_unix: decoded.expires_at.as_unix_seconds(),
        }),
    })
}
