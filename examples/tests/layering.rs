//! The layering rule of the workspace, checked rather than hoped: a crate
//! depends only on crates below it (as listed in the root `Cargo.toml`), so
//! an embedder can take the bottom of the stack without the top.
#![allow(clippy::unwrap_used, reason = "a test: a failure should panic")]

use std::path::Path;

/// Bottom to top; the same order as the root `Cargo.toml` comment.
const LAYERS: [&str; 7] = [
    "shardkeep-wire",
    "shardkeep-sss-core",
    "shardkeep-envelope",
    "shardkeep-keydata",
    "shardkeep-storage",
    "shardkeep-audit",
    "shardkeep-kms",
];

/// The package name and every `shardkeep-*` dependency (any section) of a
/// crate manifest.
fn package_and_dependencies(manifest: &str) -> (String, Vec<String>) {
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
            dependencies.push(dependency.to_owned());
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
        let layer = LAYERS
            .iter()
            .position(|name| *name == package)
            .unwrap_or_else(|| panic!("{package} is not placed in LAYERS"));
        for dependency in dependencies {
            let below = LAYERS.iter().position(|name| *name == dependency);
            assert!(
                below.is_some_and(|below| below < layer),
                "{package} depends on {dependency}, which is not below it"
            );
        }
        seen.push(package);
    }
    seen.sort();
    let mut all = LAYERS.map(str::to_owned).to_vec();
    all.sort();
    assert_eq!(
        seen, all,
        "every listed layer is a crate, and no crate is missing"
    );
}

#[test]
fn the_manifest_reader_sees_every_section() {
    let (package, dependencies) = package_and_dependencies(
        "[package]\nname = \"shardkeep-audit\"\n[dependencies]\nshardkeep-storage.workspace = true\n\
         [dev-dependencies]\nshardkeep-kms = { workspace = true }\n",
    );
    assert_eq!(package, "shardkeep-audit");
    assert_eq!(dependencies, ["shardkeep-storage", "shardkeep-kms"]);
}
