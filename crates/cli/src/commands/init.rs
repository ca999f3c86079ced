//! `init person`: a person's secrets and configuration file.

use serde::Serialize;
use shardkeep_types::{ActorId, CustodianId, Signer as _};

use super::{Context, shown};
use crate::cli::InitArgs;
use crate::config::{
    CONFIG_FORMAT, ConfigFile, ServerFile, ServiceSignerFile, parse_service_signer,
};
use crate::error::{Error, ExitCode};
use crate::files::{self, Access};
use crate::output::{Report, line};
use crate::secrets::{PersonSecrets, read_passphrase};

/// What `init` made: the public values to register for the person.
#[derive(Debug, Serialize)]
struct InitReport {
    command: &'static str,
    person: String,
    config: String,
    secrets: String,
    /// The person's ed25519 public key: register it as their approval key
    /// (approvers) or receipt key (custodians).
    signing_key: String,
    /// The custodian's age recipient (register it as theirs).
    #[serde(skip_serializing_if = "Option::is_none")]
    age_recipient: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    custodian: Option<String>,
}

impl Report for InitReport {
    fn human(&self, out: &mut String) {
        line!(
            out,
            "made the secrets of {} in {}",
            self.person,
            self.secrets
        );
        line!(out, "configuration:  {}", self.config);
        line!(out, "signing key:    {}", self.signing_key);
        if let Some(recipient) = &self.age_recipient {
            line!(out, "age recipient:  {recipient}");
        }
        line!(
            out,
            "register these public values for {} with the service's security person",
            self.person
        );
    }
}

pub(super) fn person(context: &Context, args: InitArgs) -> Result<ExitCode, Error> {
    let person = ActorId::new(args.person.as_str()).map_err(|_| Error::Argument {
        flag: "person",
        reason: "not a valid actor id".to_owned(),
    })?;
    if let Some(custodian) = &args.custodian {
        CustodianId::new(custodian.as_str()).map_err(|_| Error::Argument {
            flag: "custodian",
            reason: "not a valid custodian id".to_owned(),
        })?;
    }
    let service_signer = match (&args.service_signer, &args.service_key) {
        (Some(id), Some(key)) => {
            parse_service_signer(id, key).map_err(|reason| Error::Argument {
                flag: "service-key",
                reason,
            })?;
            Some(ServiceSignerFile {
                id: id.clone(),
                key: key.to_ascii_lowercase(),
            })
        }
        _ => None,
    };
    let server = match (args.server, args.ca, args.cert, args.client_key) {
        (Some(url), Some(ca), Some(cert), Some(key)) => Some(ServerFile {
            url,
            tls_name: args.tls_name,
            ca,
            cert,
            key,
        }),
        _ => None,
    };
    let config_path = &context.config_path;
    let secrets_name = format!("{}.secrets.age", person.as_str());
    let secrets_path = config_path.parent().map_or_else(
        || secrets_name.clone().into(),
        |dir| dir.join(&secrets_name),
    );
    if !args.force {
        for path in [config_path, &secrets_path] {
            if path.exists() {
                return Err(Error::OutputExists(path.clone()));
            }
        }
    }

    let secrets = PersonSecrets::generate(person.clone(), args.custodian.is_some())?;
    let prompt = format!("New passphrase for {}: ", secrets_path.display());
    let sealed = secrets.seal(read_passphrase(&prompt, true)?)?;
    let signing_key = hex::encode(secrets.signer()?.verifying_key().to_bytes());
    let age_recipient = args
        .custodian
        .as_ref()
        .map(|_| {
            secrets
                .age_identity()
                .map(|identity| identity.to_public().to_string())
        })
        .transpose()?;
    let config = ConfigFile {
        format: CONFIG_FORMAT.to_owned(),
        person: person.as_str().to_owned(),
        secrets: secrets_name.into(),
        custodian: args.custodian.clone(),
        service_signer,
        server,
    };
    let mut config_text = serde_json::to_string_pretty(&config)
        .map_err(|_| Error::Internal("the configuration does not serialize"))?;
    config_text.push('\n');
    files::write_new(&secrets_path, &sealed, args.force, Access::OwnerOnly)?;
    files::write_new(
        config_path,
        config_text.as_bytes(),
        args.force,
        Access::Public,
    )?;
    context.output.report(&InitReport {
        command: "init person",
        person: person.as_str().to_owned(),
        config: shown(config_path),
        secrets: shown(&secrets_path),
        signing_key,
        age_recipient,
        custodian: args.custodian,
    })?;
    Ok(ExitCode::Ok)
}
