//! The layering rule of the workspace, checked rather than hoped: a crate
//! depends only on crates below it (as listed in the root `Cargo.toml`), so
//! an embedder can take the bottom of the stack without the top. Test-only
//! crates stand outside the layers: they depend on no crate of ours, and
//! are only ever dev-dependencies.
#![allow(clippy::unwrap_used, reason = "a test: a failure should panic")]

use std::path::Path;

/// Bottom to top; the same order as the root `Cargo.toml` comment.
const LAYERS: [&str; 11] = [
    "shardkeep-wire",
    "shardkeep-types",
    "shardkeep-sss-core",
    "shardkeep-envelope",
    "shardkeep-keydata",
    "shardkeep-storage",
    "shardkeep-audit",
    "shardkeep-kms",
    "shardkeep-backup",
    "shardkeep-grpc",
    "shardkeep",
];

/// Crates for tests only, outside the layers.
const TEST_ONLY: [&str; 2] = ["shardkeep-residue-alloc", "shardkeep-test-support"];

/// A `shardkeep-*` dependency of a manifest, and whether it is a
/// dev-dependency.
#[derive(Debug, PartialEq, Eq)]
struct Dependency {
    name: String,
    dev: bool,
}

/// The package name and every `shardkeep-*` dependency (any section) of a
/// crate manifest.
fn package_and_dependencies(manifest: &str) -> (String, Vec<Dependency>) {
    let mut name = None;
    let mut dependencies = Vec::new();
    let mut section = "";
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if section == "[package]" && line.starts_with("name") {
            name = line.split('"').nth(1).map(str::to_owned);
        } else if section.contains("dependencies") && line.starts_with("shardkeep-") {
            let dependency = line.split(['.', ' ', '=']).next().unwrap();
            dependencies.push(Dependency {
                name: dependency.to_owned(),
                dev: section.contains("dev-dependencies"),
            });
        }
    }
    (name.unwrap(), dependencies)
}

#[test]
fn every_crate_depends_only_on_crates_below_it() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(crates).unwrap() {
        let manifest = std::fs::read_to_string(entry.unwrap().path().join("Cargo.toml")).unwrap();
        let (package, dependencies) = package_and_dependencies(&manifest);
        seen.push(package.clone());
        if TEST_ONLY.contains(&package.as_str()) {
            assert!(
                dependencies.is_empty(),
                "{package} is test-only and must depend on no crate of ours: {dependencies:?}"
            );
            continue;
        }
        let layer = LAYERS
            .iter()
            .position(|name| *name == package)
            .unwrap_or_else(|| panic!("{package} is not placed in LAYERS or TEST_ONLY"));
        for dependency in dependencies {
            if TEST_ONLY.contains(&dependency.name.as_str()) {
                assert!(
                    dependency.dev,
                    "{package} depends on the test-only {} outside [dev-dependencies]",
                    dependency.name
                );
                continue;
            }
            let below = LAYERS.iter().position(|name| *name == dependency.name);
            assert!(
                below.is_some_and(|below| below < layer),
                "{package} depends on {}, which is not below it",
                dependency.name
            );
        }
    }
    seen.sort();
    let mut all: Vec<String> = LAYERS.iter().chain(&TEST_ONLY).map(|s| (*s).to_owned()).collect();
    all.sort();
    assert_eq!(seen, all, "every listed crate exists, and no crate is missing from the lists");
}

#[test]
fn the_manifest_reader_sees_every_section() {
    let (package, dependencies) = package_and_dependencies(
        "[package]\nname = \"shardkeep-audit\"\n[dependencies]\nshardkeep-storage.workspace = true\n\
         [dev-dependencies]\nshardkeep-kms = { workspace = true }\n\
         [target.'cfg(unix)'.dev-dependencies]\nshardkeep-residue-alloc.workspace = true\n",
    );
    assert_eq!(package, "shardkeep-audit");
    let dependency = |name: &str, dev| Dependency { name: name.to_owned(), dev };
    assert_eq!(
        dependencies,
        [
            dependency("shardkeep-storage", false),
            dependency("shardkeep-kms", true),
            dependency("shardkeep-residue-alloc", true),
        ]
    );
}
