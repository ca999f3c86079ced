//! The registry: who may call the service and in which roles, and the
//! custodian entities shares go to. A security person registers persons
//! and entities, rotates keys and revokes. Registering a new approver
//! (security, business owner) is itself an approved change once the
//! registry holds a quorum of approvers: `person request` asks for
//! approval of exactly the registration (its hash, computed here from
//! every field), and `person register --request` runs it.

use std::path::Path;

use clap::ValueEnum as _;
use serde::{Deserialize, Serialize};
use shardkeep_backup::{
    ApprovalOperation, ApproverSetChange, PersonKeys, PersonRegistration, Role, RoleSet,
};
use shardkeep_grpc::proto;
use shardkeep_types::{ActorId, CustodianId, FreeText};

use super::approval::{self, Approved};
use super::{Context, hex32, when};
use crate::cli::{EntityCommand, PersonArgs, PersonCommand, PersonKeyArgs, RoleArg};
use crate::client;
use crate::error::{Error, ExitCode};
use crate::files::{self, Access};
use crate::output::{Report, line};

/// The registry's role of a command-line role.
const fn role(arg: RoleArg) -> Role {
    match arg {
        RoleArg::Operator => Role::Operator,
        RoleArg::Security => Role::Security,
        RoleArg::BusinessOwner => Role::BusinessOwner,
        RoleArg::Compliance => Role::Compliance,
        RoleArg::Custodian => Role::Custodian,
        RoleArg::Auditor => Role::Auditor,
    }
}

fn actor(flag: &'static str, text: &str) -> Result<ActorId, Error> {
    ActorId::new(text).map_err(|_| Error::Argument {
        flag,
        reason: "not a valid actor id".to_owned(),
    })
}

fn entity_id(text: &str) -> Result<CustodianId, Error> {
    CustodianId::new(text).map_err(|_| Error::Argument {
        flag: "entity",
        reason: "not a valid custodian id".to_owned(),
    })
}

fn free_text<const MAX: usize>(flag: &'static str, text: &str) -> Result<FreeText<MAX>, Error> {
    FreeText::new(text).map_err(|_| Error::Argument {
        flag,
        reason: format!("not valid free text of at most {MAX} bytes"),
    })
}

/// The keys named on the command line, checked for form (the service
/// checks the rest: weak, reused, in use, a valid age recipient).
fn keys(args: &PersonKeyArgs) -> Result<PersonKeys, Error> {
    let key =
        |flag, text: &Option<String>| text.as_deref().map(|text| hex32(flag, text)).transpose();
    Ok(PersonKeys {
        receipt_key: key("receipt-key", &args.receipt_key)?,
        approval_key: key("approval-key", &args.approval_key)?,
        age_recipient: args.age_recipient.clone(),
        tls_fingerprint: key("tls-fingerprint", &args.tls_fingerprint)?,
    })
}

/// The registration named on the command line, checked as the service
/// checks its form.
fn registration(args: &PersonArgs) -> Result<PersonRegistration, Error> {
    let mut roles = RoleSet::EMPTY;
    for arg in &args.roles {
        if roles.contains(role(*arg)) {
            return Err(Error::Argument {
                flag: "role",
                reason: format!("{} is named twice", role(*arg)),
            });
        }
        roles = roles.with(role(*arg));
    }
    Ok(PersonRegistration {
        id: actor("person", &args.person)?,
        display_name: free_text(
            "display-name",
            args.display_name.as_deref().unwrap_or(&args.person),
        )?,
        roles,
        keys: keys(&args.keys)?,
    })
}

/// The `format` of a registration file.
const REGISTRATION_FORMAT: &str = "shardkeep-person-registration-v1";
/// Largest registration file read.
const MAX_REGISTRATION_FILE_LEN: usize = 64 * 1024;

/// A registration as `person request` writes it for the approvers: every
/// field the approver-set change's hash covers, all public.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrationFile {
    format: String,
    person: String,
    display_name: String,
    roles: Vec<RoleArg>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    receipt_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    approval_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    age_recipient: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tls_fingerprint: Option<String>,
}

impl RegistrationFile {
    fn of(registration: &PersonRegistration) -> Result<Self, Error> {
        Ok(Self {
            format: REGISTRATION_FORMAT.to_owned(),
            person: registration.id.as_str().to_owned(),
            display_name: registration.display_name.as_str().to_owned(),
            roles: registration
                .roles
                .iter()
                .map(role_arg)
                .collect::<Result<_, _>>()?,
            receipt_key: registration.keys.receipt_key.map(hex::encode),
            approval_key: registration.keys.approval_key.map(hex::encode),
            age_recipient: registration.keys.age_recipient.clone(),
            tls_fingerprint: registration.keys.tls_fingerprint.map(hex::encode),
        })
    }

    fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut text = serde_json::to_vec_pretty(self)
            .map_err(|_| Error::Internal("the registration does not serialize"))?;
        text.push(b'\n');
        Ok(text)
    }
}

/// A registration file read back, checked as `person register` checks
/// its flags.
pub(super) fn read_registration(path: &Path) -> Result<PersonRegistration, Error> {
    let invalid = |reason: String| Error::Argument {
        flag: "expect-registration",
        reason,
    };
    let bytes = files::read_capped(path, "registration", MAX_REGISTRATION_FILE_LEN)?;
    let file: RegistrationFile = serde_json::from_slice(&bytes)
        .map_err(|error| invalid(format!("not a registration file: {error}")))?;
    if file.format != REGISTRATION_FORMAT {
        return Err(invalid(format!(
            "format {:?} is not {REGISTRATION_FORMAT}",
            file.format
        )));
    }
    registration(&PersonArgs {
        person: file.person,
        display_name: Some(file.display_name),
        roles: file.roles,
        keys: PersonKeyArgs {
            receipt_key: file.receipt_key,
            approval_key: file.approval_key,
            age_recipient: file.age_recipient,
            tls_fingerprint: file.tls_fingerprint,
        },
    })
}

/// A registration, readably (what an approver is shown).
pub(super) fn describe(registration: &PersonRegistration) -> String {
    let roles: Vec<&str> = registration.roles.iter().map(Role::name).collect();
    let keys = &registration.keys;
    let mut held = Vec::new();
    if let Some(key) = keys.approval_key {
        held.push(format!("approval key {}", hex::encode(key)));
    }
    if let Some(key) = keys.receipt_key {
        held.push(format!("receipt key {}", hex::encode(key)));
    }
    if let Some(recipient) = &keys.age_recipient {
        held.push(format!("age recipient {recipient}"));
    }
    if let Some(fingerprint) = keys.tls_fingerprint {
        held.push(format!("TLS fingerprint {}", hex::encode(fingerprint)));
    }
    format!(
        "{} ({}) as {}; {}",
        registration.id,
        registration.display_name.as_str(),
        if roles.is_empty() {
            "no role".to_owned()
        } else {
            roles.join(", ")
        },
        if held.is_empty() {
            "no keys".to_owned()
        } else {
            held.join(", ")
        }
    )
}

/// The command line's name of `role` (every role has one).
fn role_arg(of: Role) -> Result<RoleArg, Error> {
    RoleArg::value_variants()
        .iter()
        .copied()
        .find(|arg| role(*arg) == of)
        .ok_or(Error::Internal("a role without a command-line name"))
}

fn wire_keys(keys: &PersonKeys) -> proto::PersonKeys {
    let bytes = |key: Option<[u8; 32]>| key.map(|key| key.to_vec()).unwrap_or_default();
    proto::PersonKeys {
        receipt_key: bytes(keys.receipt_key),
        approval_key: bytes(keys.approval_key),
        age_recipient: keys.age_recipient.clone().unwrap_or_default(),
        tls_fingerprint: bytes(keys.tls_fingerprint),
    }
}

/// `person register`.
#[derive(Debug, Serialize)]
struct PersonReport {
    command: &'static str,
    person: String,
    roles: Vec<String>,
    key_epoch: u32,
    registered_at_unix: u64,
    registered_by: String,
    /// The approver-set change request it consumed.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_hash: Option<String>,
}

impl Report for PersonReport {
    fn human(&self, out: &mut String) {
        line!(
            out,
            "registered {} as {} (key epoch {}) at {}",
            self.person,
            if self.roles.is_empty() {
                "no role".to_owned()
            } else {
                self.roles.join(", ")
            },
            self.key_epoch,
            when(self.registered_at_unix)
        );
        if let Some(hash) = &self.request_hash {
            line!(out, "on the approved request {hash}");
        }
    }
}

/// `person rotate-keys`, `person revoke`, `entity revoke`.
#[derive(Debug, Serialize)]
struct ChangeReport {
    command: &'static str,
    /// `person` or `entity`.
    kind: &'static str,
    id: String,
    /// `person rotate-keys`: the key epoch that starts now.
    #[serde(skip_serializing_if = "Option::is_none")]
    key_epoch: Option<u32>,
}

impl Report for ChangeReport {
    fn human(&self, out: &mut String) {
        match self.key_epoch {
            Some(epoch) => line!(
                out,
                "{} {}: new keys, key epoch {epoch}; the old ones are refused from now on",
                self.kind,
                self.id
            ),
            None => line!(out, "{} {} revoked, effective now", self.kind, self.id),
        }
    }
}

/// `entity register`.
#[derive(Debug, Serialize)]
struct EntityReport {
    command: &'static str,
    entity: String,
    members: Vec<String>,
    registered_at_unix: u64,
}

impl Report for EntityReport {
    fn human(&self, out: &mut String) {
        line!(
            out,
            "registered custodian entity {} at {}, acting for it: {}",
            self.entity,
            when(self.registered_at_unix),
            self.members.join(", ")
        );
    }
}

pub(super) async fn person(context: &Context, command: PersonCommand) -> Result<ExitCode, Error> {
    match command {
        PersonCommand::Request {
            registration: args,
            ticket,
            risk_note,
            out,
            registration_out,
            force,
        } => {
            let registration = registration(&args)?;
            let asked = ApproverSetChange::Register(&registration).approval_params(
                approval::ticket(&ticket)?,
                approval::risk_note_hash(&risk_note)?,
            );
            // Written first: a request nobody can check is never asked.
            files::write_new(
                &registration_out,
                &RegistrationFile::of(&registration)?.encode()?,
                force,
                Access::Public,
            )?;
            approval::ask(context, "person request", &asked, &out, force).await
        }
        PersonCommand::Register {
            registration: args,
            request,
        } => {
            let config = context.config()?;
            let registration = registration(&args)?;
            let approved = Approved::read_change(
                request.as_deref(),
                ApprovalOperation::ApproverSetChange,
                ApproverSetChange::Register(&registration).hash(),
            )?;
            let approval = Approved::change_approval(approved.as_ref());
            let mut client = client::connect(config.server()?).await?;
            let answer = client
                .register_person(proto::RegisterPersonRequest {
                    person: registration.id.as_str().to_owned(),
                    display_name: registration.display_name.as_str().to_owned(),
                    roles: registration
                        .roles
                        .iter()
                        .map(|role| role.name().to_owned())
                        .collect(),
                    keys: Some(wire_keys(&registration.keys)),
                    approval_request_hash: approval.request_hash,
                    ticket: approval.ticket,
                    risk_note_hash: approval.risk_note_hash,
                })
                .await?
                .into_inner();
            if answer.person != registration.id.as_str() {
                return Err(Error::BadAnswer(
                    "the person registered is not the one asked for",
                ));
            }
            context.output.report(&PersonReport {
                command: "person register",
                person: answer.person,
                roles: answer.roles,
                key_epoch: answer.key_epoch,
                registered_at_unix: answer.registered_at_unix,
                registered_by: answer.registered_by,
                request_hash: approved.map(|approved| hex::encode(approved.hash.0)),
            })?;
            Ok(ExitCode::Ok)
        }
        PersonCommand::RotateKeys { person, keys: args } => {
            let config = context.config()?;
            let person = actor("person", &person)?;
            let keys = keys(&args)?;
            let mut client = client::connect(config.server()?).await?;
            let answer = client
                .rotate_person_keys(proto::RotatePersonKeysRequest {
                    person: person.as_str().to_owned(),
                    keys: Some(wire_keys(&keys)),
                })
                .await?
                .into_inner();
            context.output.report(&ChangeReport {
                command: "person rotate-keys",
                kind: "person",
                id: person.as_str().to_owned(),
                key_epoch: Some(answer.key_epoch),
            })?;
            Ok(ExitCode::Ok)
        }
        PersonCommand::Revoke { person, reason } => {
            let config = context.config()?;
            let person = actor("person", &person)?;
            let reason: FreeText<{ shardkeep_storage::MAX_REVOCATION_REASON_LEN }> =
                free_text("reason", &reason)?;
            let mut client = client::connect(config.server()?).await?;
            client
                .revoke_person(proto::RevokePersonRequest {
                    person: person.as_str().to_owned(),
                    reason: reason.as_str().to_owned(),
                })
                .await?;
            context.output.report(&ChangeReport {
                command: "person revoke",
                kind: "person",
                id: person.as_str().to_owned(),
                key_epoch: None,
            })?;
            Ok(ExitCode::Ok)
        }
    }
}

pub(super) async fn entity(context: &Context, command: EntityCommand) -> Result<ExitCode, Error> {
    let config = context.config()?;
    match command {
        EntityCommand::Register {
            entity,
            display_name,
            contact,
            members,
        } => {
            let entity = entity_id(&entity)?;
            let display_name: FreeText<{ shardkeep_storage::MAX_DISPLAY_NAME_LEN }> = free_text(
                "display-name",
                display_name.as_deref().unwrap_or(entity.as_str()),
            )?;
            let contact: FreeText<{ shardkeep_storage::MAX_CONTACT_LEN }> =
                free_text("contact", &contact)?;
            let members = members
                .iter()
                .map(|member| actor("member", member).map(|member| member.as_str().to_owned()))
                .collect::<Result<Vec<_>, _>>()?;
            let mut client = client::connect(config.server()?).await?;
            let answer = client
                .register_entity(proto::RegisterEntityRequest {
                    entity: entity.as_str().to_owned(),
                    display_name: display_name.as_str().to_owned(),
                    contact: contact.as_str().to_owned(),
                    members,
                })
                .await?
                .into_inner();
            if answer.entity != entity.as_str() {
                return Err(Error::BadAnswer(
                    "the entity registered is not the one asked for",
                ));
            }
            context.output.report(&EntityReport {
                command: "entity register",
                entity: answer.entity,
                members: answer.members,
                registered_at_unix: answer.registered_at_unix,
            })?;
        }
        EntityCommand::Revoke { entity } => {
            let entity = entity_id(&entity)?;
            let mut client = client::connect(config.server()?).await?;
            client
                .revoke_entity(proto::RevokeEntityRequest {
                    entity: entity.as_str().to_owned(),
                })
                .await?;
            context.output.report(&ChangeReport {
                command: "entity revoke",
                kind: "entity",
                id: entity.as_str().to_owned(),
                key_epoch: None,
            })?;
        }
    }
    Ok(ExitCode::Ok)
}
