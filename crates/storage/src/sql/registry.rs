//! The registry: persons, their keys by epoch, and custodian entities.

use shardkeep_types::{ActorId, CustodianId, FreeText, Timestamp};

use super::{Arg, Backend, Columns, SqlTransaction, args, guarded};
use crate::MAX_PAGE_ROWS;
use crate::error::Error;
use crate::records::{
    EntityRecord, EntityState, MAX_AGE_RECIPIENT_LEN, MAX_ENTITY_MEMBERS,
    MAX_REVOCATION_REASON_LEN, PUBLIC_KEY_LEN, PersonKeyEpoch, PersonKeys, PersonRecord,
    PersonState, RoleSet,
};
use crate::traits::RegistryStore;
use crate::types::timestamp_to_db;

const PERSONS: &str = "persons";
const KEYS: &str = "person_keys";
const ENTITIES: &str = "entities";
const MEMBERS: &str = "entity_members";

/// A person with the keys of their current epoch: columns 0..=9 are the
/// person, 10..=13 the keys, 14 the epoch's start.
macro_rules! select_person {
    ($tail:literal) => {
        concat!(
            "SELECT p.id, p.display_name, p.roles, p.key_epoch, p.state, p.revoked_at, ",
            "p.revoked_by, p.revoke_reason, p.registered_at, p.registered_by, ",
            "k.receipt_key, k.approval_key, k.age_recipient, k.tls_fingerprint, k.valid_from ",
            "FROM persons p JOIN person_keys k ON k.person_id = p.id AND k.epoch = p.key_epoch ",
            $tail
        )
    };
}

/// The keys in columns `first..first + 4`.
fn decode_keys<B: Backend>(cols: &Columns<'_, B>, first: usize) -> Result<PersonKeys, Error> {
    let keys = PersonKeys {
        receipt_key: cols.opt_digest(first, "receipt_key")?,
        approval_key: cols.opt_digest(first + 1, "approval_key")?,
        age_recipient: cols.opt_text(first + 2, "age_recipient")?,
        tls_fingerprint: cols.opt_digest(first + 3, "tls_fingerprint")?,
    };
    check_recipient(keys.age_recipient.as_deref()).map_err(|_| cols.corrupt("age_recipient"))?;
    Ok(keys)
}

/// A person and the start of their current key epoch.
fn decode_person<B: Backend>(row: &B::Row) -> Result<(PersonRecord, Timestamp), Error> {
    let cols = Columns::<B>::new(row, PERSONS);
    let roles = cols
        .small::<u8>(2, "roles")
        .ok()
        .and_then(RoleSet::from_bits)
        .ok_or_else(|| cols.corrupt("roles"))?;
    let state = match (
        cols.text(4, "state")?.as_str(),
        cols.opt_timestamp(5, "revoked_at")?,
        cols.opt_text(6, "revoked_by")?,
        cols.opt_text(7, "revoke_reason")?,
    ) {
        ("active", None, None, None) => PersonState::Active,
        ("revoked", Some(at), Some(by), Some(reason)) => PersonState::Revoked {
            at,
            by: ActorId::new(by).map_err(|_| cols.corrupt("revoked_by"))?,
            reason: FreeText::new(reason).map_err(|_| cols.corrupt("revoke_reason"))?,
        },
        _ => return Err(cols.corrupt("state")),
    };
    let person = PersonRecord {
        id: cols.parse(0, "id", ActorId::new)?,
        display_name: cols.parse(1, "display_name", FreeText::new)?,
        roles,
        keys: decode_keys(&cols, 10)?,
        key_epoch: cols.small(3, "key_epoch")?,
        state,
        registered_at: cols.timestamp(8, "registered_at")?,
        registered_by: cols.parse(9, "registered_by", ActorId::new)?,
    };
    Ok((person, cols.timestamp(14, "valid_from")?))
}

/// A person and the start of their current key epoch, or
/// [`Error::PersonNotFound`].
async fn load_person<B: Backend>(
    tx: &mut SqlTransaction<B>,
    id: &ActorId,
) -> Result<(PersonRecord, Timestamp), Error> {
    const SQL: &str = select_person!("WHERE p.id = $1");
    let row = tx
        .fetch_optional(PERSONS, SQL, args![id.as_str()])
        .await?
        .ok_or_else(|| Error::PersonNotFound(id.clone()))?;
    decode_person::<B>(&row)
}

/// A person who may act, or [`Error::PersonNotFound`] /
/// [`Error::PersonRevoked`]; with the start of their current key epoch.
pub(super) async fn load_active_person<B: Backend>(
    tx: &mut SqlTransaction<B>,
    id: &ActorId,
) -> Result<(PersonRecord, Timestamp), Error> {
    let (person, valid_from) = load_person(tx, id).await?;
    if person.state != PersonState::Active {
        return Err(Error::PersonRevoked(id.clone()));
    }
    Ok((person, valid_from))
}

/// An age recipient is 1 to [`MAX_AGE_RECIPIENT_LEN`] printable ASCII
/// characters: what the backup crate parses, and safe to print.
fn check_recipient(recipient: Option<&str>) -> Result<(), Error> {
    match recipient {
        Some(text)
            if text.is_empty()
                || text.len() > MAX_AGE_RECIPIENT_LEN
                || !text.bytes().all(|byte| byte.is_ascii_graphic()) =>
        {
            Err(Error::InvalidAgeRecipient)
        }
        _ => Ok(()),
    }
}

/// Queries that find a conflicting key, one per kind, each taking the
/// person (`$1`) and the key (`$2`). Receipt and approval keys are both
/// ed25519 keys: one query finds either in both columns.
struct KeyQueries {
    signing_key: &'static str,
    age_recipient: &'static str,
    tls_fingerprint: &'static str,
}

/// Keys any of which is, or was in any epoch, another person's.
const KEYS_OF_OTHERS: KeyQueries = KeyQueries {
    signing_key: "SELECT 1 FROM person_keys WHERE person_id <> $1 \
         AND (receipt_key = $2 OR approval_key = $2) LIMIT 1",
    age_recipient: "SELECT 1 FROM person_keys WHERE person_id <> $1 AND age_recipient = $2 LIMIT 1",
    tls_fingerprint: "SELECT 1 FROM person_keys WHERE person_id <> $1 AND tls_fingerprint = $2 \
         LIMIT 1",
};

/// Keys `$1` held in an earlier, ended key epoch and does not hold now: a
/// key rotated out (perhaps because it leaked) never comes back, a key of
/// the current epoch may be kept.
const RETIRED_KEYS: KeyQueries = KeyQueries {
    signing_key: "SELECT 1 FROM person_keys WHERE person_id = $1 \
         AND valid_until IS NOT NULL AND (receipt_key = $2 OR approval_key = $2) \
         AND NOT EXISTS (SELECT 1 FROM person_keys WHERE person_id = $1 \
         AND valid_until IS NULL AND (receipt_key = $2 OR approval_key = $2)) LIMIT 1",
    age_recipient: "SELECT 1 FROM person_keys WHERE person_id = $1 \
         AND valid_until IS NOT NULL AND age_recipient = $2 \
         AND NOT EXISTS (SELECT 1 FROM person_keys WHERE person_id = $1 \
         AND valid_until IS NULL AND age_recipient = $2) LIMIT 1",
    tls_fingerprint: "SELECT 1 FROM person_keys WHERE person_id = $1 \
         AND valid_until IS NOT NULL AND tls_fingerprint = $2 \
         AND NOT EXISTS (SELECT 1 FROM person_keys WHERE person_id = $1 \
         AND valid_until IS NULL AND tls_fingerprint = $2) LIMIT 1",
};

/// The kind of the first of `keys` that `queries` find for `person`
/// (`receipt key`, `approval key`, `age recipient`, `TLS fingerprint`).
async fn first_key_found<B: Backend>(
    tx: &mut SqlTransaction<B>,
    person: &ActorId,
    keys: &PersonKeys,
    queries: &KeyQueries,
) -> Result<Option<&'static str>, Error> {
    let checks: [(&'static str, &'static str, Option<Arg>); 4] = [
        (
            "receipt key",
            queries.signing_key,
            keys.receipt_key.map(|key| Arg::from(key.as_slice())),
        ),
        (
            "approval key",
            queries.signing_key,
            keys.approval_key.map(|key| Arg::from(key.as_slice())),
        ),
        (
            "age recipient",
            queries.age_recipient,
            keys.age_recipient.as_deref().map(Arg::from),
        ),
        (
            "TLS fingerprint",
            queries.tls_fingerprint,
            keys.tls_fingerprint.map(|key| Arg::from(key.as_slice())),
        ),
    ];
    for (kind, sql, value) in checks {
        let Some(value) = value else { continue };
        if tx
            .fetch_optional(KEYS, sql, vec![Arg::from(person.as_str()), value])
            .await?
            .is_some()
        {
            return Ok(Some(kind));
        }
    }
    Ok(None)
}

/// Refuses keys any of which is, or was in any epoch, another person's.
async fn check_keys_free<B: Backend>(
    tx: &mut SqlTransaction<B>,
    person: &ActorId,
    keys: &PersonKeys,
) -> Result<(), Error> {
    match first_key_found(tx, person, keys, &KEYS_OF_OTHERS).await? {
        Some(kind) => Err(Error::KeyInUse { kind }),
        None => Ok(()),
    }
}

/// Refuses keys any of which `person` held in an earlier, ended key epoch
/// and does not hold now.
async fn check_keys_not_retired<B: Backend>(
    tx: &mut SqlTransaction<B>,
    person: &ActorId,
    keys: &PersonKeys,
) -> Result<(), Error> {
    match first_key_found(tx, person, keys, &RETIRED_KEYS).await? {
        Some(kind) => Err(Error::KeyRetired { kind }),
        None => Ok(()),
    }
}

/// Inserts key epoch `epoch` of `person`, starting at `valid_from`.
async fn insert_keys<B: Backend>(
    tx: &mut SqlTransaction<B>,
    person: &ActorId,
    epoch: u32,
    keys: &PersonKeys,
    valid_from: Timestamp,
) -> Result<(), Error> {
    tx.execute(
        KEYS,
        "INSERT INTO person_keys (person_id, epoch, receipt_key, approval_key, age_recipient, \
         tls_fingerprint, valid_from) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        args![
            person.as_str(),
            i64::from(epoch),
            keys.receipt_key
                .as_ref()
                .map(<[u8; PUBLIC_KEY_LEN]>::as_slice),
            keys.approval_key
                .as_ref()
                .map(<[u8; PUBLIC_KEY_LEN]>::as_slice),
            keys.age_recipient.as_deref(),
            keys.tls_fingerprint
                .as_ref()
                .map(<[u8; PUBLIC_KEY_LEN]>::as_slice),
            timestamp_to_db(valid_from),
        ],
    )
    .await?;
    Ok(())
}

/// Ends the current key epoch of `person` at `at`.
async fn end_epoch<B: Backend>(
    tx: &mut SqlTransaction<B>,
    person: &ActorId,
    epoch: u32,
    at: Timestamp,
) -> Result<(), Error> {
    tx.update_one(
        KEYS,
        "UPDATE person_keys SET valid_until = $3 \
         WHERE person_id = $1 AND epoch = $2 AND valid_until IS NULL",
        args![person.as_str(), i64::from(epoch), timestamp_to_db(at)],
    )
    .await
}

async fn register_person<B: Backend>(
    tx: &mut SqlTransaction<B>,
    person: &PersonRecord,
) -> Result<(), Error> {
    if person.state != PersonState::Active {
        return Err(Error::InvalidRegistration { field: "state" });
    }
    if person.key_epoch != 1 {
        return Err(Error::InvalidRegistration { field: "key_epoch" });
    }
    check_recipient(person.keys.age_recipient.as_deref())?;
    if tx
        .fetch_optional(
            PERSONS,
            "SELECT 1 FROM persons WHERE id = $1",
            args![person.id.as_str()],
        )
        .await?
        .is_some()
    {
        return Err(Error::PersonExists(person.id.clone()));
    }
    check_keys_free(tx, &person.id, &person.keys).await?;
    tx.execute(
        PERSONS,
        "INSERT INTO persons (id, display_name, roles, roles_set_at, key_epoch, state, \
         registered_at, registered_by) VALUES ($1, $2, $3, $4, 1, 'active', $4, $5)",
        args![
            person.id.as_str(),
            person.display_name.as_str(),
            i64::from(person.roles.bits()),
            timestamp_to_db(person.registered_at),
            person.registered_by.as_str(),
        ],
    )
    .await?;
    insert_keys(tx, &person.id, 1, &person.keys, person.registered_at).await
}

async fn person_by_fingerprint<B: Backend>(
    tx: &mut SqlTransaction<B>,
    fingerprint: &[u8; PUBLIC_KEY_LEN],
) -> Result<Option<PersonRecord>, Error> {
    // Current keys only: the join picks each person's current epoch.
    const SQL: &str = select_person!("WHERE k.tls_fingerprint = $1");
    let Some(row) = tx
        .fetch_optional(KEYS, SQL, args![fingerprint.as_slice()])
        .await?
    else {
        return Ok(None);
    };
    decode_person::<B>(&row).map(|(person, _)| Some(person))
}

async fn persons<B: Backend>(
    tx: &mut SqlTransaction<B>,
    after: Option<&ActorId>,
    limit: u32,
) -> Result<Vec<PersonRecord>, Error> {
    // Every id has at least one byte, so every id sorts after ''.
    const SQL: &str = select_person!("WHERE p.id > $1 ORDER BY p.id LIMIT $2");
    let rows = tx
        .fetch(
            PERSONS,
            SQL,
            args![
                after.map_or("", ActorId::as_str),
                i64::from(limit.min(MAX_PAGE_ROWS))
            ],
        )
        .await?;
    rows.iter()
        .map(|row| decode_person::<B>(row).map(|(person, _)| person))
        .collect()
}

async fn persons_named<B: Backend>(
    tx: &mut SqlTransaction<B>,
    ids: &[ActorId],
) -> Result<Vec<PersonRecord>, Error> {
    // A fixed statement (prepared once, cached) with a fixed number of
    // slots; a chunk's unused slots hold '', which no id equals.
    const SQL: &str = select_person!("WHERE p.id IN ($1, $2, $3, $4, $5, $6, $7, $8)");
    const _: () = assert!(crate::PERSONS_PER_QUERY == 8);
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(crate::PERSONS_PER_QUERY) {
        let mut args: Vec<Arg> = chunk.iter().map(|id| Arg::from(id.as_str())).collect();
        args.resize_with(crate::PERSONS_PER_QUERY, || Arg::from(""));
        for row in tx.fetch(PERSONS, SQL, args).await? {
            let (person, _) = decode_person::<B>(&row)?;
            if !found
                .iter()
                .any(|known: &PersonRecord| known.id == person.id)
            {
                found.push(person);
            }
        }
    }
    Ok(found)
}

async fn rotate_keys<B: Backend>(
    tx: &mut SqlTransaction<B>,
    id: &ActorId,
    keys: &PersonKeys,
    at: Timestamp,
) -> Result<u32, Error> {
    check_recipient(keys.age_recipient.as_deref())?;
    let (person, valid_from) = load_active_person(tx, id).await?;
    if at < valid_from {
        return Err(Error::TimesOutOfOrder { field: "at" });
    }
    let epoch = person
        .key_epoch
        .checked_add(1)
        .ok_or(Error::CounterExhausted {
            counter: "key epoch",
        })?;
    check_keys_free(tx, id, keys).await?;
    check_keys_not_retired(tx, id, keys).await?;
    end_epoch(tx, id, person.key_epoch, at).await?;
    insert_keys(tx, id, epoch, keys, at).await?;
    tx.update_one(
        PERSONS,
        "UPDATE persons SET key_epoch = $3 WHERE id = $1 AND key_epoch = $2",
        args![id.as_str(), i64::from(person.key_epoch), i64::from(epoch)],
    )
    .await?;
    Ok(epoch)
}

async fn set_roles<B: Backend>(
    tx: &mut SqlTransaction<B>,
    id: &ActorId,
    roles: RoleSet,
    at: Timestamp,
) -> Result<(), Error> {
    load_active_person(tx, id).await?;
    tx.update_one(
        PERSONS,
        "UPDATE persons SET roles = $2, roles_set_at = $3 WHERE id = $1 AND state = 'active'",
        args![id.as_str(), i64::from(roles.bits()), timestamp_to_db(at)],
    )
    .await
}

async fn revoke_person<B: Backend>(
    tx: &mut SqlTransaction<B>,
    id: &ActorId,
    by: &ActorId,
    reason: &FreeText<MAX_REVOCATION_REASON_LEN>,
    at: Timestamp,
) -> Result<(), Error> {
    let (person, valid_from) = load_active_person(tx, id).await?;
    if at < valid_from {
        return Err(Error::TimesOutOfOrder { field: "at" });
    }
    tx.update_one(
        PERSONS,
        "UPDATE persons SET state = 'revoked', revoked_at = $2, revoked_by = $3, \
         revoke_reason = $4 WHERE id = $1 AND state = 'active'",
        args![
            id.as_str(),
            timestamp_to_db(at),
            by.as_str(),
            reason.as_str()
        ],
    )
    .await?;
    end_epoch(tx, id, person.key_epoch, at).await
}

async fn key_history<B: Backend>(
    tx: &mut SqlTransaction<B>,
    id: &ActorId,
) -> Result<Vec<PersonKeyEpoch>, Error> {
    load_person(tx, id).await?;
    let rows = tx
        .fetch(
            KEYS,
            "SELECT person_id, epoch, receipt_key, approval_key, age_recipient, tls_fingerprint, \
             valid_from, valid_until FROM person_keys WHERE person_id = $1 ORDER BY epoch",
            args![id.as_str()],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let cols = Columns::<B>::new(row, KEYS);
            Ok(PersonKeyEpoch {
                person: cols.parse(0, "person_id", ActorId::new)?,
                epoch: cols.small(1, "epoch")?,
                keys: decode_keys(&cols, 2)?,
                valid_from: cols.timestamp(6, "valid_from")?,
                valid_until: cols.opt_timestamp(7, "valid_until")?,
            })
        })
        .collect()
}

/// Columns 0..=6 of an entity.
macro_rules! select_entity {
    ($tail:literal) => {
        concat!(
            "SELECT id, display_name, contact, state, revoked_at, revoked_by, registered_at ",
            "FROM entities ",
            $tail
        )
    };
}

fn decode_entity<B: Backend>(row: &B::Row, members: Vec<ActorId>) -> Result<EntityRecord, Error> {
    let cols = Columns::<B>::new(row, ENTITIES);
    let state = match (
        cols.text(3, "state")?.as_str(),
        cols.opt_timestamp(4, "revoked_at")?,
        cols.opt_text(5, "revoked_by")?,
    ) {
        ("active", None, None) => EntityState::Active,
        ("revoked", Some(at), Some(by)) => EntityState::Revoked {
            at,
            by: ActorId::new(by).map_err(|_| cols.corrupt("revoked_by"))?,
        },
        _ => return Err(cols.corrupt("state")),
    };
    Ok(EntityRecord {
        id: cols.parse(0, "id", CustodianId::new)?,
        display_name: cols.parse(1, "display_name", FreeText::new)?,
        contact: cols.parse(2, "contact", FreeText::new)?,
        members,
        state,
        registered_at: cols.timestamp(6, "registered_at")?,
    })
}

/// Decodes `(entity_id, person_id)` member rows.
fn decode_members<B: Backend>(rows: &[B::Row]) -> Result<Vec<(CustodianId, ActorId)>, Error> {
    rows.iter()
        .map(|row| {
            let cols = Columns::<B>::new(row, MEMBERS);
            Ok((
                cols.parse(0, "entity_id", CustodianId::new)?,
                cols.parse(1, "person_id", ActorId::new)?,
            ))
        })
        .collect()
}

/// An entity, or [`Error::EntityNotFound`].
pub(super) async fn load_entity<B: Backend>(
    tx: &mut SqlTransaction<B>,
    id: &CustodianId,
) -> Result<EntityRecord, Error> {
    const SQL: &str = select_entity!("WHERE id = $1");
    let row = tx
        .fetch_optional(ENTITIES, SQL, args![id.as_str()])
        .await?
        .ok_or_else(|| Error::EntityNotFound(id.clone()))?;
    let members = tx
        .fetch(
            MEMBERS,
            "SELECT entity_id, person_id FROM entity_members WHERE entity_id = $1 \
             ORDER BY person_id",
            args![id.as_str()],
        )
        .await?;
    let members = decode_members::<B>(&members)?
        .into_iter()
        .map(|(_, person)| person)
        .collect();
    decode_entity::<B>(&row, members)
}

async fn register_entity<B: Backend>(
    tx: &mut SqlTransaction<B>,
    entity: &EntityRecord,
) -> Result<(), Error> {
    if entity.state != EntityState::Active {
        return Err(Error::InvalidRegistration { field: "state" });
    }
    if entity.members.is_empty()
        || entity.members.len() > MAX_ENTITY_MEMBERS
        || !entity.members.is_sorted_by(|a, b| a < b)
    {
        return Err(Error::InvalidMembers);
    }
    if tx
        .fetch_optional(
            ENTITIES,
            "SELECT 1 FROM entities WHERE id = $1",
            args![entity.id.as_str()],
        )
        .await?
        .is_some()
    {
        return Err(Error::EntityExists(entity.id.clone()));
    }
    for person in &entity.members {
        load_active_person(tx, person).await?;
        if let Some(row) = tx
            .fetch_optional(
                MEMBERS,
                "SELECT m.entity_id FROM entity_members m \
                 JOIN entities e ON e.id = m.entity_id \
                 WHERE m.person_id = $1 AND e.state = 'active' LIMIT 1",
                args![person.as_str()],
            )
            .await?
        {
            let cols = Columns::<B>::new(&row, MEMBERS);
            return Err(Error::PersonInOtherEntity {
                person: person.clone(),
                entity: cols.parse(0, "entity_id", CustodianId::new)?,
            });
        }
    }
    tx.execute(
        ENTITIES,
        "INSERT INTO entities (id, display_name, contact, state, registered_at) \
         VALUES ($1, $2, $3, 'active', $4)",
        args![
            entity.id.as_str(),
            entity.display_name.as_str(),
            entity.contact.as_str(),
            timestamp_to_db(entity.registered_at),
        ],
    )
    .await?;
    for person in &entity.members {
        tx.execute(
            MEMBERS,
            "INSERT INTO entity_members (entity_id, person_id) VALUES ($1, $2)",
            args![entity.id.as_str(), person.as_str()],
        )
        .await?;
    }
    Ok(())
}

async fn entities<B: Backend>(tx: &mut SqlTransaction<B>) -> Result<Vec<EntityRecord>, Error> {
    const SQL: &str = select_entity!("ORDER BY id");
    let rows = tx.fetch(ENTITIES, SQL, Vec::new()).await?;
    let member_rows = tx
        .fetch(
            MEMBERS,
            "SELECT entity_id, person_id FROM entity_members ORDER BY entity_id, person_id",
            Vec::new(),
        )
        .await?;
    let mut members = decode_members::<B>(&member_rows)?.into_iter().peekable();
    rows.iter()
        .map(|row| {
            let id = Columns::<B>::new(row, ENTITIES).parse(0, "id", CustodianId::new)?;
            // Both lists are ordered by entity id: take this entity's run.
            let mut own = Vec::new();
            while let Some((_, person)) = members.next_if(|(entity, _)| *entity <= id) {
                own.push(person);
            }
            decode_entity::<B>(row, own)
        })
        .collect()
}

async fn revoke_entity<B: Backend>(
    tx: &mut SqlTransaction<B>,
    id: &CustodianId,
    by: &ActorId,
    at: Timestamp,
) -> Result<(), Error> {
    if load_entity(tx, id).await?.state != EntityState::Active {
        return Err(Error::EntityRevoked(id.clone()));
    }
    tx.update_one(
        ENTITIES,
        "UPDATE entities SET state = 'revoked', revoked_at = $2, revoked_by = $3 \
         WHERE id = $1 AND state = 'active'",
        args![id.as_str(), timestamp_to_db(at), by.as_str()],
    )
    .await
}

impl<B: Backend> RegistryStore for SqlTransaction<B> {
    async fn register_person(&mut self, person: &PersonRecord) -> Result<(), Error> {
        guarded!(self, Write, register_person(self, person))
    }

    async fn person(&mut self, id: &ActorId) -> Result<PersonRecord, Error> {
        guarded!(self, Read, async {
            load_person(self, id).await.map(|(person, _)| person)
        })
    }

    async fn persons_named(&mut self, ids: &[ActorId]) -> Result<Vec<PersonRecord>, Error> {
        guarded!(self, Read, persons_named(self, ids))
    }

    async fn person_by_tls_fingerprint(
        &mut self,
        fingerprint: &[u8; PUBLIC_KEY_LEN],
    ) -> Result<Option<PersonRecord>, Error> {
        guarded!(self, Read, person_by_fingerprint(self, fingerprint))
    }

    async fn persons(
        &mut self,
        after: Option<&ActorId>,
        limit: u32,
    ) -> Result<Vec<PersonRecord>, Error> {
        guarded!(self, Read, persons(self, after, limit))
    }

    async fn rotate_person_keys(
        &mut self,
        id: &ActorId,
        keys: &PersonKeys,
        at: Timestamp,
    ) -> Result<u32, Error> {
        guarded!(self, Write, rotate_keys(self, id, keys, at))
    }

    async fn set_person_roles(
        &mut self,
        id: &ActorId,
        roles: RoleSet,
        at: Timestamp,
    ) -> Result<(), Error> {
        guarded!(self, Write, set_roles(self, id, roles, at))
    }

    async fn revoke_person(
        &mut self,
        id: &ActorId,
        by: &ActorId,
        reason: &FreeText<MAX_REVOCATION_REASON_LEN>,
        at: Timestamp,
    ) -> Result<(), Error> {
        guarded!(self, Write, revoke_person(self, id, by, reason, at))
    }

    async fn person_key_history(&mut self, id: &ActorId) -> Result<Vec<PersonKeyEpoch>, Error> {
        guarded!(self, Read, key_history(self, id))
    }

    async fn register_entity(&mut self, entity: &EntityRecord) -> Result<(), Error> {
        guarded!(self, Write, register_entity(self, entity))
    }

    async fn entity(&mut self, id: &CustodianId) -> Result<EntityRecord, Error> {
        guarded!(self, Read, load_entity(self, id))
    }

    async fn entities(&mut self) -> Result<Vec<EntityRecord>, Error> {
        guarded!(self, Read, entities(self))
    }

    async fn revoke_entity(
        &mut self,
        id: &CustodianId,
        by: &ActorId,
        at: Timestamp,
    ) -> Result<(), Error> {
        guarded!(self, Write, revoke_entity(self, id, by, at))
    }
}
