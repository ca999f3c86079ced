//! Status pages and the status summary over 10,000 key versions, on the
//! embedded SQLite default and (feature `test-support`) on a throwaway
//! PostgreSQL cluster.
//!
//! Both databases are seeded with `shardkeep_storage::fleet` (feature
//! `conformance`): 2,000 group keys of 5 nodes, one active version each,
//! with their shares, custody, deliveries and drills.
//!
//! Measured with the default filter, each in a read-only transaction of
//! its own: the first page of 1,000 rows, a page from the middle (keyset
//! `after` the 5,000th row) and the summary over all 10,000 versions; then,
//! once every other version is retired, the summary again (its worst
//! case: the 5,000 retired versions' rows are joined to be left out).
//!
//! On PostgreSQL the seeded database is vacuumed and analysed before the
//! measurements, as autovacuum does after a bulk load.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed bench setup should stop loudly.

use criterion::{Criterion, criterion_group, criterion_main};
use shardkeep_storage::fleet::{self, KEYS, VERSIONS};
use shardkeep_storage::{SqliteStorage, StatusFilter, StatusStore, Storage, Transaction};
use shardkeep_types::NodeVersion;

/// The page size measured.
const PAGE: u32 = 1_000;

/// The version of every row `filter` selects, page by page; checks the
/// seeding on the way.
async fn all_versions<S: Storage>(storage: &S, filter: &StatusFilter) -> Vec<NodeVersion> {
    let mut tx = storage.begin_read_only().await.unwrap();
    let mut versions: Vec<NodeVersion> = Vec::new();
    loop {
        let page = tx.status_page(filter, versions.last(), PAGE).await.unwrap();
        if page.is_empty() {
            return versions;
        }
        versions.extend(page.into_iter().map(|row| row.version));
    }
}

/// Seeds `storage`, checks it, and measures its status queries with the
/// default filter (every version that is not retired: all of them).
fn bench_backend<S: Storage>(
    c: &mut Criterion,
    name: &str,
    runtime: &tokio::runtime::Runtime,
    storage: &S,
    settle: impl Fn(),
) {
    runtime.block_on(fleet::seed(storage));
    settle();
    let filter = StatusFilter::default();
    let all = runtime.block_on(all_versions(storage, &filter));
    assert_eq!(all.len(), usize::try_from(VERSIONS).unwrap());
    let summary = runtime.block_on(async {
        let mut tx = storage.begin_read_only().await.unwrap();
        tx.status_summary(&filter).await.unwrap()
    });
    assert_eq!(summary.versions, u64::from(VERSIONS));
    assert_eq!(summary.nodes, u64::from(VERSIONS));
    assert_eq!(summary.keys, u64::from(KEYS));
    assert_eq!(summary.external_assigned, 3 * u64::from(VERSIONS));
    assert_eq!(summary.drills, u64::from(VERSIONS));
    let middle = all[all.len() / 2 - 1].clone();

    let mut group = c.benchmark_group(format!("status/{name}"));
    let page = |after: Option<&NodeVersion>| {
        runtime.block_on(async {
            let mut tx = storage.begin_read_only().await.unwrap();
            let rows = tx.status_page(&filter, after, PAGE).await.unwrap();
            assert_eq!(rows.len(), usize::try_from(PAGE).unwrap());
            tx.rollback().await.unwrap();
            rows
        })
    };
    group.bench_function("first page (1,000 rows)", |b| {
        b.iter(|| page(None));
    });
    group.bench_function("middle page (1,000 rows after the 5,000th)", |b| {
        b.iter(|| page(Some(&middle)));
    });
    let summary = || {
        runtime.block_on(async {
            let mut tx = storage.begin_read_only().await.unwrap();
            let summary = tx.status_summary(&filter).await.unwrap();
            tx.rollback().await.unwrap();
            summary
        })
    };
    group.bench_function("summary (10,000 versions)", |b| {
        b.iter(summary);
    });

    // The summary's worst case: as many versions left out as selected, so
    // half of every table's rows are joined to their versions.
    runtime.block_on(fleet::retire_every_other(storage, &all));
    settle();
    assert_eq!(summary().versions, u64::from(VERSIONS / 2));
    group.bench_function("summary (5,000 of 10,000 versions, 5,000 retired)", |b| {
        b.iter(summary);
    });
    group.finish();
}

fn status(c: &mut Criterion) {
    let runtime = shardkeep_test_support::runtime::multi_thread();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = runtime
        .block_on(SqliteStorage::open(dir.path().join("status.db")))
        .unwrap();
    bench_backend(c, "sqlite", &runtime, &sqlite, || ());

    #[cfg(feature = "test-support")]
    {
        use shardkeep_storage::PostgresStorage;
        use shardkeep_storage::test_support::PostgresCluster;
        let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
        let postgres = runtime.block_on(async {
            let database = cluster.create_database("status_bench").await.unwrap();
            PostgresStorage::connect(&database.service_url)
                .await
                .unwrap()
        });
        // What autovacuum does after a bulk load: statistics for the
        // planner, the visibility map for index-only scans.
        let settle = || {
            cluster.psql("status_bench", "VACUUM ANALYZE").unwrap();
        };
        bench_backend(c, "postgres", &runtime, &postgres, settle);
        runtime.block_on(postgres.close());
    }
}

criterion_group!(benches, status);
criterion_main!(benches);
