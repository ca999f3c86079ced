//! `generate` and `rotate`: the service splits a node's key share read
//! from its keystore file, seals the server's shares, and returns the
//! custodians' containers, which are written here for the operator to
//! carry (the delivery is recorded with `deliver record`).

use std::path::PathBuf;

use serde::Serialize;
use shardkeep_backup::container_hash;
use shardkeep_grpc::proto;

use super::{Context, VersionReport, answer32, node_version, proto_version, shown, when};
use crate::cli::{GenerateArgs, RotationKindArg};
use crate::client;
use crate::error::{Error, ExitCode};
use crate::files::{self, Access};
use crate::output::{Report, line};

/// Most external custodians a request names (the service's cap).
const MAX_CUSTODIANS: usize = 255;

/// One container written.
#[derive(Debug, Serialize)]
struct ContainerReport {
    index: u32,
    custodian: String,
    person: String,
    envelope_id: String,
    container_hash: String,
    file: String,
}

/// What `generate` and `rotate` made.
#[derive(Debug, Serialize)]
struct GeneratedReport {
    version: VersionReport,
    split_id: String,
    threshold: u32,
    shares: u32,
    server_indices: Vec<u32>,
    containers: Vec<ContainerReport>,
}

impl GeneratedReport {
    fn human(&self, out: &mut String) {
        line!(
            out,
            "{}: split {}, {} of {} shares, the server holds {:?}",
            self.version,
            self.split_id,
            self.threshold,
            self.shares,
            self.server_indices
        );
        for container in &self.containers {
            line!(
                out,
                "  share {} for {} ({}): {} (sha256 {})",
                container.index,
                container.custodian,
                container.person,
                container.file,
                container.container_hash
            );
        }
        line!(
            out,
            "deliver each container to its custodian and record it with `deliver record`"
        );
    }
}

/// `generate`.
#[derive(Debug, Serialize)]
struct GenerateReport {
    command: &'static str,
    #[serde(flatten)]
    generated: GeneratedReport,
}

impl Report for GenerateReport {
    fn human(&self, out: &mut String) {
        self.generated.human(out);
    }
}

/// `rotate`.
#[derive(Debug, Serialize)]
struct RotateReport {
    command: &'static str,
    kind: &'static str,
    previous: VersionReport,
    cooldown_until_unix: u64,
    #[serde(flatten)]
    generated: GeneratedReport,
}

impl Report for RotateReport {
    fn human(&self, out: &mut String) {
        line!(
            out,
            "{} of {}: it retires, its cooldown ends at {}",
            self.kind,
            self.previous,
            when(self.cooldown_until_unix)
        );
        self.generated.human(out);
    }
}

/// A checked request and the file each custodian's container goes to.
struct Planned {
    request: proto::GenerateBackupRequest,
    files: Vec<PathBuf>,
}

/// Checks the command line and the output files before anything is asked
/// of the service: a backup made whose containers cannot be written is a
/// backup nobody holds.
fn plan(args: &GenerateArgs) -> Result<Planned, Error> {
    let written_for = node_version(&args.version)?;
    if !args.keystore.is_absolute() {
        return Err(Error::Argument {
            flag: "keystore",
            reason: "the service reads it: give an absolute path".to_owned(),
        });
    }
    let keystore_path = args
        .keystore
        .to_str()
        .ok_or(Error::Argument {
            flag: "keystore",
            reason: "not UTF-8".to_owned(),
        })?
        .to_owned();
    if args.custodians.len() > MAX_CUSTODIANS {
        return Err(Error::Argument {
            flag: "custodian",
            reason: format!("at most {MAX_CUSTODIANS}"),
        });
    }
    let mut custodians = Vec::with_capacity(args.custodians.len());
    let mut files = Vec::with_capacity(args.custodians.len());
    for custodian in &args.custodians {
        let (entity, person) = custodian
            .split_once('=')
            .filter(|(entity, person)| !entity.is_empty() && !person.is_empty())
            .ok_or(Error::Argument {
                flag: "custodian",
                reason: format!("{custodian:?} is not ENTITY=PERSON"),
            })?;
        // The entity names a file: a plain name only.
        if entity.contains(['/', '\\']) || entity.starts_with('.') {
            return Err(Error::Argument {
                flag: "custodian",
                reason: format!("{entity:?} is not a plain entity name"),
            });
        }
        let file = args.out_dir.join(format!("{entity}.container"));
        if files.contains(&file) {
            return Err(Error::Argument {
                flag: "custodian",
                reason: format!("{entity} is named twice"),
            });
        }
        if file.exists() {
            return Err(Error::OutputExists(file));
        }
        files.push(file);
        custodians.push(proto::ExternalCustodian {
            entity: entity.to_owned(),
            person: person.to_owned(),
        });
    }
    Ok(Planned {
        request: proto::GenerateBackupRequest {
            key_id: written_for.key_id.as_str().to_owned(),
            node_id: written_for.node_id.as_str().to_owned(),
            keystore_path,
            keystore_written_for: Some(proto_version(&written_for)),
            tss_degree: args.tss_degree,
            parties: args.parties,
            custodians,
            armor: args.armor,
        },
        files,
    })
}

/// Checks the service's answer against the request and writes each
/// container to its custodian's file.
fn write_containers(
    planned: &Planned,
    generated: &proto::GenerateBackupResponse,
) -> Result<GeneratedReport, Error> {
    if generated.containers.len() != planned.files.len() {
        return Err(Error::BadAnswer("the containers are not one per custodian"));
    }
    let split_id = answer32("split_id", &generated.split_id)?;
    let mut containers = Vec::with_capacity(planned.files.len());
    for ((container, file), custodian) in generated
        .containers
        .iter()
        .zip(&planned.files)
        .zip(&planned.request.custodians)
    {
        // Public values: what the delivery report will name.
        let hash = container_hash(&container.container);
        if hash != answer32("container_hash", &container.container_hash)? {
            return Err(Error::BadAnswer(
                "a container hash is not the container's hash",
            ));
        }
        files::write_new(file, &container.container, false, Access::Public)?;
        containers.push(ContainerReport {
            index: container.index,
            custodian: custodian.entity.clone(),
            person: custodian.person.clone(),
            envelope_id: hex::encode(&container.envelope_id),
            container_hash: hex::encode(hash),
            file: shown(file),
        });
    }
    Ok(GeneratedReport {
        version: VersionReport::of_proto(generated.version.as_ref()),
        split_id: hex::encode(split_id),
        threshold: generated.threshold,
        shares: generated.shares,
        server_indices: generated.server_indices.clone(),
        containers,
    })
}

pub(super) async fn generate(context: &Context, args: GenerateArgs) -> Result<ExitCode, Error> {
    let config = context.config()?;
    let planned = plan(&args)?;
    let mut client = client::connect(config.server()?).await?;
    let generated = client
        .generate_backup(planned.request.clone())
        .await?
        .into_inner();
    let generated = write_containers(&planned, &generated)?;
    context.output.report(&GenerateReport {
        command: "generate",
        generated,
    })?;
    Ok(ExitCode::Ok)
}

pub(super) async fn rotate(
    context: &Context,
    kind: RotationKindArg,
    args: GenerateArgs,
) -> Result<ExitCode, Error> {
    let config = context.config()?;
    let planned = plan(&args)?;
    let (wire_kind, kind) = match kind {
        RotationKindArg::Reshare => (proto::RotationKind::Reshare, "reshare"),
        RotationKindArg::Resplit => (proto::RotationKind::Resplit, "resplit"),
    };
    let mut client = client::connect(config.server()?).await?;
    let rotated = client
        .rotate_backup(proto::RotateBackupRequest {
            kind: wire_kind.into(),
            generate: Some(planned.request.clone()),
        })
        .await?
        .into_inner();
    let generated = rotated
        .generated
        .as_ref()
        .ok_or(Error::BadAnswer("no new version"))?;
    let generated = write_containers(&planned, generated)?;
    context.output.report(&RotateReport {
        command: "rotate",
        kind,
        previous: VersionReport::of_proto(rotated.previous.as_ref()),
        cooldown_until_unix: rotated.cooldown_until_unix,
        generated,
    })?;
    Ok(ExitCode::Ok)
}
