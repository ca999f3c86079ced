//! The SQL machinery both backends share: the sealed [`Backend`] trait (what
//! differs: the driver, sqlx for PostgreSQL and rusqlite for SQLite; its
//! connections, transactions and rows), the generic storage and
//! transaction types, and the record logic written once over them.
//!
//! Statements use `$1`-style placeholders, which SQLite and PostgreSQL both
//! accept, and only three column types (64-bit integer, text, blob), so the
//! same SQL text runs on both; each backend keeps its own migrations.

mod access;
mod approvals;
mod audit;
mod audit_reviews;
mod custody;
mod destructions;
mod drills;
mod groups;
mod inventory;
mod key_versions;
mod recovery_sessions;
mod registry;
mod slot_keks;
mod slots;
mod status;

use core::marker::PhantomData;

use crate::error::Error;
use crate::records::AuditHead;
use crate::traits::{Storage, Transaction};

impl From<i64> for Arg {
    fn from(value: i64) -> Self {
        Self::Int(Some(value))
    }
}

impl From<Option<i64>> for Arg {
    fn from(value: Option<i64>) -> Self {
        Self::Int(value)
    }
}

impl From<&str> for Arg {
    fn from(value: &str) -> Self {
        Self::Text(Some(value.to_owned()))
    }
}

impl From<Option<&str>> for Arg {
    fn from(value: Option<&str>) -> Self {
        Self::Text(value.map(str::to_owned))
    }
}

impl From<&[u8]> for Arg {
    fn from(value: &[u8]) -> Self {
        Self::Blob(Some(value.to_vec()))
    }
}

impl From<Option<&[u8]>> for Arg {
    fn from(value: Option<&[u8]>) -> Self {
        Self::Blob(value.map(<[u8]>::to_vec))
    }
}

/// Builds a `Vec<Arg>` from values with `From` conversions.
macro_rules! args {
    ($($value:expr),* $(,)?) => {
        vec![$($crate::sql::Arg::from($value)),*]
    };
}
pub(crate) use args;

/// Runs one operation of a transaction: refuses it on an aborted
/// transaction (or a write in a read-only one) and aborts the transaction
/// when it fails.
macro_rules! guarded {
    ($tx:ident, $access:ident, $operation:expr) => {{
        $tx.check($crate::sql::Access::$access)?;
        let result = $operation.await;
        $tx.settle($crate::sql::Access::$access, result).await
    }};
}
pub(crate) use guarded;

pub(crate) use sealed::Arg;

pub(crate) mod sealed {
    use core::future::Future;

    use crate::error::Error;

    /// One bound parameter. Nulls carry their type because PostgreSQL types
    /// every parameter.
    #[derive(Debug)]
    #[allow(unreachable_pub)] // Named by the sealed trait below; unreachable outside the crate.
    pub enum Arg {
        /// A 64-bit integer.
        Int(Option<i64>),
        /// Text.
        Text(Option<String>),
        /// Bytes.
        Blob(Option<Vec<u8>>),
    }

    /// What differs between the databases: their connections, how a
    /// transaction begins, runs a statement and ends, and how a row's three
    /// column types are read. Errors come back already mapped to this
    /// crate's [`Error`] with the operation's name.
    #[allow(unreachable_pub)] // Sealed-trait pattern: public inside a private module so no other crate can implement `Backend`.
    pub trait Backend: Send + Sync + 'static {
        /// The connections of one storage, shared by its clones.
        type Pool: Clone + Send + Sync + 'static;
        /// One open database transaction.
        type Tx: Send + 'static;
        /// One result row.
        type Row: Send + Sync + 'static;

        /// Begins a write transaction holding the database-wide write lock.
        fn begin_write(pool: &Self::Pool) -> impl Future<Output = Result<Self::Tx, Error>> + Send;

        /// Begins a read-only transaction on a consistent snapshot.
        fn begin_read(pool: &Self::Pool) -> impl Future<Output = Result<Self::Tx, Error>> + Send;

        /// Runs a statement, returning how many rows it changed.
        fn execute<'t>(
            tx: &'t mut Self::Tx,
            operation: &'static str,
            sql: &'static str,
            args: Vec<Arg>,
        ) -> impl Future<Output = Result<u64, Error>> + Send + 't;

        /// Runs a query, returning its rows.
        fn fetch<'t>(
            tx: &'t mut Self::Tx,
            operation: &'static str,
            sql: &'static str,
            args: Vec<Arg>,
        ) -> impl Future<Output = Result<Vec<Self::Row>, Error>> + Send + 't;

        /// Commits.
        fn commit(tx: Self::Tx) -> impl Future<Output = Result<(), Error>> + Send;

        /// Rolls back.
        fn rollback(tx: Self::Tx) -> impl Future<Output = Result<(), Error>> + Send;

        /// Closes every connection; later transactions fail.
        fn close(pool: &Self::Pool) -> impl Future<Output = ()> + Send;

        /// How many connections are open (for `Debug`).
        fn connections(pool: &Self::Pool) -> usize;

        /// Reads an integer column; `None` when it holds another type.
        fn int(row: &Self::Row, index: usize) -> Option<Option<i64>>;

        /// Reads a text column; `None` when it holds another type.
        fn text(row: &Self::Row, index: usize) -> Option<Option<String>>;

        /// Reads a blob column; `None` when it holds another type.
        fn blob(row: &Self::Row, index: usize) -> Option<Option<Vec<u8>>>;
    }
}

/// A database backend: [`Sqlite`](crate::Sqlite) or
/// [`Postgres`](crate::Postgres). Sealed: implemented only in this crate.
pub trait Backend: sealed::Backend {}

impl<B: sealed::Backend> Backend for B {}

/// A storage backed by a SQL database: [`SqliteStorage`](crate::SqliteStorage)
/// or [`PostgresStorage`](crate::PostgresStorage). Cloning is cheap and
/// shares the connection pool.
pub struct SqlStorage<B: Backend> {
    pub(crate) pool: B::Pool,
    backend: PhantomData<fn() -> B>,
}

impl<B: Backend> SqlStorage<B> {
    pub(crate) fn from_pool(pool: B::Pool) -> Self {
        Self {
            pool,
            backend: PhantomData,
        }
    }

    /// Closes every connection; later transactions fail.
    pub async fn close(&self) {
        B::close(&self.pool).await;
    }
}

impl<B: Backend> Clone for SqlStorage<B> {
    fn clone(&self) -> Self {
        Self::from_pool(self.pool.clone())
    }
}

impl<B: Backend> core::fmt::Debug for SqlStorage<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SqlStorage")
            .field("backend", &core::any::type_name::<B>())
            .field("connections", &B::connections(&self.pool))
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Storage for SqlStorage<B> {
    type Transaction = SqlTransaction<B>;

    async fn begin(&self) -> Result<SqlTransaction<B>, Error> {
        let tx = B::begin_write(&self.pool).await?;
        Ok(SqlTransaction::new(tx, false))
    }

    async fn begin_read_only(&self) -> Result<SqlTransaction<B>, Error> {
        let tx = B::begin_read(&self.pool).await?;
        Ok(SqlTransaction::new(tx, true))
    }
}

/// A transaction of a [`SqlStorage`]; implements every record trait.
pub struct SqlTransaction<B: Backend> {
    /// `None` once aborted: the database transaction was rolled back at
    /// the error, so it does not hold the write lock until the caller drops
    /// this value.
    tx: Option<B::Tx>,
    read_only: bool,
    aborted: bool,
    /// The audit head as of this transaction's last append: valid because a
    /// write transaction holds the write lock until it ends.
    audit_head: Option<AuditHead>,
    audit_appends: usize,
}

impl<B: Backend> core::fmt::Debug for SqlTransaction<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SqlTransaction")
            .field("backend", &core::any::type_name::<B>())
            .field("read_only", &self.read_only)
            .field("aborted", &self.aborted)
            .field("audit_appends", &self.audit_appends)
            .finish_non_exhaustive()
    }
}

/// What an operation needs from its transaction.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

impl<B: Backend> SqlTransaction<B> {
    fn new(tx: B::Tx, read_only: bool) -> Self {
        Self {
            tx: Some(tx),
            read_only,
            aborted: false,
            audit_head: None,
            audit_appends: 0,
        }
    }

    /// Refuses an operation on an aborted transaction or a write in a
    /// read-only one. Pair with [`settle`](Self::settle).
    pub(crate) fn check(&self, access: Access) -> Result<(), Error> {
        if self.aborted {
            return Err(Error::TransactionAborted);
        }
        if access == Access::Write && self.read_only {
            return Err(Error::ReadOnlyTransaction);
        }
        Ok(())
    }

    /// Aborts the transaction when a write failed, or when the database
    /// failed during a read, and rolls it back at once. A read's refusal
    /// (not found, soft-deleted...) changes nothing, so the unit of work
    /// may go on, e.g. to audit the refusal.
    pub(crate) async fn settle<T>(
        &mut self,
        access: Access,
        result: Result<T, Error>,
    ) -> Result<T, Error> {
        if let Err(error) = &result {
            let database_failed = matches!(
                error,
                Error::Database { .. }
                    | Error::DatabaseUnavailable { .. }
                    | Error::PrivilegeViolation { .. }
                    | Error::CorruptRow { .. }
                    | Error::WriteConflict { .. }
            );
            if access == Access::Write || database_failed {
                self.aborted = true;
                if let Some(tx) = self.tx.take() {
                    // The operation's own error is the one to report; a
                    // failed rollback leaves a connection the pool closes.
                    let _ = B::rollback(tx).await;
                }
            }
        }
        result
    }

    fn live(&mut self) -> Result<&mut B::Tx, Error> {
        self.tx.as_mut().ok_or(Error::TransactionAborted)
    }

    pub(crate) async fn execute(
        &mut self,
        operation: &'static str,
        sql: &'static str,
        args: Vec<Arg>,
    ) -> Result<u64, Error> {
        B::execute(self.live()?, operation, sql, args).await
    }

    /// Runs an `UPDATE` that must change exactly one row.
    pub(crate) async fn update_one(
        &mut self,
        table: &'static str,
        sql: &'static str,
        args: Vec<Arg>,
    ) -> Result<(), Error> {
        match self.execute(table, sql, args).await? {
            1 => Ok(()),
            _ => Err(Error::WriteConflict { table }),
        }
    }

    pub(crate) async fn fetch(
        &mut self,
        operation: &'static str,
        sql: &'static str,
        args: Vec<Arg>,
    ) -> Result<Vec<B::Row>, Error> {
        B::fetch(self.live()?, operation, sql, args).await
    }

    /// Runs a query expected to return at most one row.
    pub(crate) async fn fetch_optional(
        &mut self,
        operation: &'static str,
        sql: &'static str,
        args: Vec<Arg>,
    ) -> Result<Option<B::Row>, Error> {
        Ok(self.fetch(operation, sql, args).await?.into_iter().next())
    }
}

impl<B: Backend> Transaction for SqlTransaction<B> {
    async fn commit(self) -> Result<(), Error> {
        match self.tx {
            Some(tx) if !self.aborted => B::commit(tx).await,
            _ => Err(Error::TransactionAborted),
        }
    }

    async fn rollback(self) -> Result<(), Error> {
        match self.tx {
            Some(tx) => B::rollback(tx).await,
            // Already rolled back when it aborted.
            None => Ok(()),
        }
    }
}

/// Typed access to one row's columns, mapping anything unexpected to
/// [`Error::CorruptRow`].
pub(crate) struct Columns<'r, B: Backend> {
    row: &'r B::Row,
    table: &'static str,
}

impl<'r, B: Backend> Columns<'r, B> {
    pub(crate) fn new(row: &'r B::Row, table: &'static str) -> Self {
        Self { row, table }
    }

    pub(crate) fn corrupt(&self, column: &'static str) -> Error {
        Error::CorruptRow {
            table: self.table,
            column,
        }
    }

    pub(crate) fn opt_int(&self, index: usize, column: &'static str) -> Result<Option<i64>, Error> {
        B::int(self.row, index).ok_or_else(|| self.corrupt(column))
    }

    pub(crate) fn int(&self, index: usize, column: &'static str) -> Result<i64, Error> {
        self.opt_int(index, column)?
            .ok_or_else(|| self.corrupt(column))
    }

    pub(crate) fn opt_text(
        &self,
        index: usize,
        column: &'static str,
    ) -> Result<Option<String>, Error> {
        B::text(self.row, index).ok_or_else(|| self.corrupt(column))
    }

    pub(crate) fn text(&self, index: usize, column: &'static str) -> Result<String, Error> {
        self.opt_text(index, column)?
            .ok_or_else(|| self.corrupt(column))
    }

    pub(crate) fn opt_blob(
        &self,
        index: usize,
        column: &'static str,
    ) -> Result<Option<Vec<u8>>, Error> {
        B::blob(self.row, index).ok_or_else(|| self.corrupt(column))
    }

    pub(crate) fn blob(&self, index: usize, column: &'static str) -> Result<Vec<u8>, Error> {
        self.opt_blob(index, column)?
            .ok_or_else(|| self.corrupt(column))
    }

    /// A column that must hold a value of a validated type.
    pub(crate) fn parse<T, E>(
        &self,
        index: usize,
        column: &'static str,
        parse: impl FnOnce(String) -> Result<T, E>,
    ) -> Result<T, Error> {
        parse(self.text(index, column)?).map_err(|_| self.corrupt(column))
    }

    pub(crate) fn timestamp(
        &self,
        index: usize,
        column: &'static str,
    ) -> Result<shardkeep_types::Timestamp, Error> {
        crate::types::timestamp_from_db(self.int(index, column)?)
            .ok_or_else(|| self.corrupt(column))
    }

    pub(crate) fn opt_timestamp(
        &self,
        index: usize,
        column: &'static str,
    ) -> Result<Option<shardkeep_types::Timestamp>, Error> {
        self.opt_int(index, column)?
            .map(|value| crate::types::timestamp_from_db(value).ok_or_else(|| self.corrupt(column)))
            .transpose()
    }

    pub(crate) fn digest(&self, index: usize, column: &'static str) -> Result<[u8; 32], Error> {
        self.blob(index, column)?
            .try_into()
            .map_err(|_| self.corrupt(column))
    }

    pub(crate) fn opt_digest(
        &self,
        index: usize,
        column: &'static str,
    ) -> Result<Option<[u8; 32]>, Error> {
        self.opt_blob(index, column)?
            .map(|blob| blob.try_into().map_err(|_| self.corrupt(column)))
            .transpose()
    }

    /// An integer column holding a value of type `T` (a count, an index, an
    /// epoch...).
    pub(crate) fn small<T: TryFrom<i64>>(
        &self,
        index: usize,
        column: &'static str,
    ) -> Result<T, Error> {
        T::try_from(self.int(index, column)?).map_err(|_| self.corrupt(column))
    }

    pub(crate) fn u64(&self, index: usize, column: &'static str) -> Result<u64, Error> {
        u64::try_from(self.int(index, column)?).map_err(|_| self.corrupt(column))
    }
}

/// Converts a count or sequence to the databases' signed 64-bit integer.
pub(crate) fn db_int(value: u64) -> i64 {
    // Sequences and versions are capped far below i64::MAX where they are
    // created; saturating keeps a bug from wrapping to a negative number.
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Decodes the three columns `key_id, node_id, version` starting at `first`.
pub(crate) fn node_version<B: Backend>(
    cols: &Columns<'_, B>,
    first: usize,
) -> Result<shardkeep_types::NodeVersion, Error> {
    let key_id = cols.parse(first, "key_id", shardkeep_types::KeyId::new)?;
    let node_id = cols.parse(first + 1, "node_id", shardkeep_types::NodeId::new)?;
    let version =
        u32::try_from(cols.int(first + 2, "version")?).map_err(|_| cols.corrupt("version"))?;
    Ok(shardkeep_types::NodeVersion {
        key_id,
        node_id,
        version: shardkeep_types::KeyVersion::new(version),
    })
}

/// Decodes the four columns `key_id, node_id, version, share_index`.
pub(crate) fn share_slot<B: Backend>(
    cols: &Columns<'_, B>,
    first: usize,
) -> Result<shardkeep_types::ShareSlot, Error> {
    let version = node_version(cols, first)?;
    let index = u8::try_from(cols.int(first + 3, "share_index")?)
        .ok()
        .and_then(shardkeep_types::ShareIndex::new)
        .ok_or_else(|| cols.corrupt("share_index"))?;
    Ok(version.slot(index))
}

/// [`KEYS_PER_QUERY`](crate::KEYS_PER_QUERY) parameters for `keys` (at
/// most that many, at least one): the last key repeats in the places left
/// over, which changes nothing an `IN` list selects.
pub(crate) fn key_list_args(keys: &[shardkeep_types::KeyId]) -> Vec<Arg> {
    let mut args: Vec<Arg> = keys.iter().map(|key| Arg::from(key.as_str())).collect();
    if let Some(last) = keys.last() {
        args.resize_with(crate::KEYS_PER_QUERY, || Arg::from(last.as_str()));
    }
    args
}

/// The bound parameters `key_id, node_id, version` of a key version.
pub(crate) fn version_args(version: &shardkeep_types::NodeVersion) -> Vec<Arg> {
    args![
        version.key_id.as_str(),
        version.node_id.as_str(),
        i64::from(version.version.get()),
    ]
}

/// The bound parameters `key_id, node_id, version, share_index` of a slot.
pub(crate) fn slot_args(slot: &shardkeep_types::ShareSlot) -> Vec<Arg> {
    args![
        slot.key_id.as_str(),
        slot.node_id.as_str(),
        i64::from(slot.version.get()),
        i64::from(slot.index.get()),
    ]
}

/// Builds a `Vec<Arg>` starting with the given prefix.
pub(crate) fn with(mut prefix: Vec<Arg>, rest: Vec<Arg>) -> Vec<Arg> {
    prefix.extend(rest);
    prefix
}
