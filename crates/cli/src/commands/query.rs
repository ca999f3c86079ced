//! `status` and `list`: read-only views of the service, page by page.

use serde::Serialize;
use shardkeep_grpc::proto;

use super::{Context, VersionReport, enum_name, when};
use crate::cli::{ListArgs, PageArgs, StatusArgs};
use crate::client;
use crate::error::{Error, ExitCode};
use crate::output::{Report, line};

/// Most pages `--all` fetches: a service that never ends its listing is
/// stopped here.
const MAX_PAGES: usize = 10_000;

/// One version's status.
#[derive(Debug, Serialize)]
struct VersionStatusReport {
    version: VersionReport,
    state: String,
    curve: String,
    threshold: u32,
    shares: u32,
    created_at_unix: u64,
    server_shares: u32,
    server_shares_held: u32,
    server_shares_soft_deleted: u32,
    server_shares_hard_deleted: u32,
    external_shares: u32,
    external_assigned: u32,
    external_confirmed: u32,
    outstanding_deliveries: u32,
    deliveries_failed: u32,
    recoverable: bool,
    last_inventory_at_unix: u64,
    last_passed_drill_at_unix: u64,
    next_drill_due_unix: u64,
    next_drill_reason: String,
    drill_overdue: bool,
    needs_regeneration: bool,
    exposed_to: Vec<String>,
    group_known: bool,
    outstanding_destructions: Vec<u32>,
}

impl VersionStatusReport {
    fn of(status: &proto::VersionStatus) -> Self {
        Self {
            version: VersionReport::of_proto(status.version.as_ref()),
            state: enum_name(status.state().as_str_name(), "KEY_VERSION_STATE_"),
            curve: status.curve.clone(),
            threshold: status.threshold,
            shares: status.shares,
            created_at_unix: status.created_at_unix,
            server_shares: status.server_shares,
            server_shares_held: status.server_shares_held,
            server_shares_soft_deleted: status.server_shares_soft_deleted,
            server_shares_hard_deleted: status.server_shares_hard_deleted,
            external_shares: status.external_shares,
            external_assigned: status.external_assigned,
            external_confirmed: status.external_confirmed,
            outstanding_deliveries: status.outstanding_deliveries,
            deliveries_failed: status.deliveries_failed,
            recoverable: status.recoverable,
            last_inventory_at_unix: status.last_inventory_at_unix,
            last_passed_drill_at_unix: status.last_passed_drill_at_unix,
            next_drill_due_unix: status.next_drill_due_unix,
            next_drill_reason: enum_name(
                status.next_drill_reason().as_str_name(),
                "DRILL_DUE_REASON_",
            ),
            drill_overdue: status.drill_overdue,
            needs_regeneration: status.needs_regeneration,
            exposed_to: status.exposed_to.clone(),
            group_known: status.group_known,
            outstanding_destructions: status.outstanding_destructions.clone(),
        }
    }
}

/// `status`.
#[derive(Debug, Serialize)]
struct StatusReport {
    command: &'static str,
    as_of_unix: u64,
    versions: Vec<VersionStatusReport>,
    /// Empty on the last page.
    next_page_token: String,
}

impl Report for StatusReport {
    fn human(&self, out: &mut String) {
        line!(out, "status as of {}", when(self.as_of_unix));
        if self.versions.is_empty() {
            line!(out, "no key versions");
        }
        for status in &self.versions {
            line!(
                out,
                "{} [{}] {} {}-of-{}: server {}/{} held, external {}/{} confirmed, {}",
                status.version,
                status.state,
                if status.curve.is_empty() {
                    "?"
                } else {
                    &status.curve
                },
                status.threshold,
                status.shares,
                status.server_shares_held,
                status.server_shares,
                status.external_confirmed,
                status.external_shares,
                if status.recoverable {
                    "recoverable by the custodians"
                } else {
                    "NOT recoverable by the custodians alone"
                },
            );
            line!(
                out,
                "    last inventory {}, last passed drill {}, next drill {} ({}){}{}",
                when(status.last_inventory_at_unix),
                when(status.last_passed_drill_at_unix),
                when(status.next_drill_due_unix),
                status.next_drill_reason,
                if status.drill_overdue {
                    ", OVERDUE"
                } else {
                    ""
                },
                if status.needs_regeneration {
                    ", needs regeneration"
                } else {
                    ""
                },
            );
            if !status.exposed_to.is_empty() {
                line!(out, "    EXPOSED to {}", status.exposed_to.join(", "));
            }
        }
        if !self.next_page_token.is_empty() {
            line!(out, "more: --page-token {}", self.next_page_token);
        }
    }
}

/// Where paging stands: the next token, and whether to fetch it.
#[derive(Debug)]
struct Pager {
    token: String,
    all: bool,
    fetched: usize,
}

impl Pager {
    fn new(page: &PageArgs) -> Self {
        Self {
            token: page.page_token.clone().unwrap_or_default(),
            all: page.all,
            fetched: 0,
        }
    }

    /// Takes the page just fetched's `next` token; whether to fetch again.
    fn advance(&mut self, next: String) -> Result<bool, Error> {
        self.fetched += 1;
        self.token = next;
        if !self.all || self.token.is_empty() {
            return Ok(false);
        }
        if self.fetched >= MAX_PAGES {
            return Err(Error::BadAnswer("the listing does not end"));
        }
        Ok(true)
    }
}

pub(super) async fn status(context: &Context, args: StatusArgs) -> Result<ExitCode, Error> {
    let config = context.config()?;
    let mut client = client::connect(config.server()?).await?;
    let mut pager = Pager::new(&args.page);
    let mut versions = Vec::new();
    let as_of_unix = loop {
        let request = proto::GetBackupStatusRequest {
            key_id: args.key.clone().unwrap_or_default(),
            node_id: args.node.clone().unwrap_or_default(),
            include_retired: args.include_retired,
            page_size: args.page.page_size,
            page_token: pager.token.clone(),
        };
        let page = client.get_backup_status(request).await?.into_inner();
        versions.extend(page.versions.iter().map(VersionStatusReport::of));
        if !pager.advance(page.next_page_token)? {
            break page.as_of_unix;
        }
    };
    let next_page_token = pager.token;
    context.output.report(&StatusReport {
        command: "status",
        as_of_unix,
        versions,
        next_page_token,
    })?;
    Ok(ExitCode::Ok)
}

/// One server-held share.
#[derive(Debug, Serialize)]
struct ShareReport {
    version: VersionReport,
    index: u32,
    envelope_id: String,
    kek_id: String,
    state: String,
    created_at_unix: u64,
}

/// `list`.
#[derive(Debug, Serialize)]
struct ListReport {
    command: &'static str,
    as_of_unix: u64,
    shares: Vec<ShareReport>,
    next_page_token: String,
}

impl Report for ListReport {
    fn human(&self, out: &mut String) {
        line!(out, "server-held shares as of {}", when(self.as_of_unix));
        if self.shares.is_empty() {
            line!(out, "none");
        }
        for share in &self.shares {
            line!(
                out,
                "{} #{} [{}] envelope {} under KEK {}, stored {}",
                share.version,
                share.index,
                share.state,
                share.envelope_id,
                share.kek_id,
                when(share.created_at_unix)
            );
        }
        if !self.next_page_token.is_empty() {
            line!(out, "more: --page-token {}", self.next_page_token);
        }
    }
}

pub(super) async fn list(context: &Context, args: ListArgs) -> Result<ExitCode, Error> {
    let config = context.config()?;
    let mut client = client::connect(config.server()?).await?;
    let mut pager = Pager::new(&args.page);
    let mut shares = Vec::new();
    let as_of_unix = loop {
        let request = proto::ListBackupSharesRequest {
            key_id: args.key.clone().unwrap_or_default(),
            node_id: args.node.clone().unwrap_or_default(),
            version: args.key_version.unwrap_or(0),
            page_size: args.page.page_size,
            page_token: pager.token.clone(),
        };
        let page = client.list_backup_shares(request).await?.into_inner();
        shares.extend(page.shares.iter().map(|share| {
            let slot = share.slot.as_ref();
            ShareReport {
                version: VersionReport::of_proto(slot.and_then(|slot| slot.version.as_ref())),
                index: slot.map_or(0, |slot| slot.index),
                envelope_id: hex::encode(&share.envelope_id),
                kek_id: share.kek_id.clone(),
                state: enum_name(share.state().as_str_name(), "SLOT_STATE_"),
                created_at_unix: share.created_at_unix,
            }
        }));
        if !pager.advance(page.next_page_token)? {
            break page.as_of_unix;
        }
    };
    let next_page_token = pager.token;
    context.output.report(&ListReport {
        command: "list",
        as_of_unix,
        shares,
        next_page_token,
    })?;
    Ok(ExitCode::Ok)
}
