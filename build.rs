//! Compiles proto/ with protox (pure Rust), so no system `protoc` is needed; and embeds the
//! list of crates compiled into the binary (from Cargo.lock) for the console's `/security` page.

use std::collections::{BTreeMap, BTreeSet};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/vigo/v1/agent.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Attribute blobs decode as slices of the server's cached bundle bytes (no copy).
        .bytes(".vigo.v1.Resource.attributes_json")
        .compile_fds(descriptors)?;
    // What `release sign` and the startup gate compare a manifest's target with.
    println!("cargo:rustc-env=VIGO_TARGET={}", std::env::var("TARGET")?);
    // A release key compiled in (hex Ed25519 public key); without one the build is a
    // development build (docs/OPERATIONS.md, "Signed releases").
    println!("cargo:rerun-if-env-changed=VIGO_RELEASE_PUBKEY");
    if let Ok(key) = std::env::var("VIGO_RELEASE_PUBKEY") {
        println!("cargo:rustc-env=VIGO_RELEASE_PUBKEY={key}");
    }
    embed_dependencies()
}

#[derive(serde::Deserialize)]
struct Lock {
    package: Vec<LockedPackage>,
}

#[derive(serde::Deserialize)]
struct LockedPackage {
    name: String,
    version: String,
    #[serde(default)]
    dependencies: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Manifest {
    package: ManifestPackage,
    #[serde(default)]
    dependencies: BTreeMap<String, serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
struct ManifestPackage {
    name: String,
}

/// Writes `$OUT_DIR/dependencies.txt`, one `name version` a line: the packages of Cargo.lock
/// reachable from this crate's normal dependencies (its build and dev dependencies are not in
/// the binary). Cargo.lock does not say which edges of a dependency are build-only or for
/// another platform, so those stay in: the list over-reports rather than misses.
fn embed_dependencies() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-changed=Cargo.toml");
    let lock: Lock = basic_toml::from_str(&std::fs::read_to_string("Cargo.lock")?)?;
    let manifest: Manifest = basic_toml::from_str(&std::fs::read_to_string("Cargo.toml")?)?;
    let by_name = |name: &str, version: Option<&str>| {
        lock.package.iter().find(|p| p.name == name && version.is_none_or(|v| p.version == v))
    };
    // A lock entry names a dependency as `name`, `name version` or `name version (source)`.
    let resolve = |dep: &str| {
        let mut words = dep.split(' ');
        let name = words.next().unwrap_or_default();
        by_name(name, words.next())
    };
    let root = by_name(&manifest.package.name, None).ok_or("the crate itself is not in Cargo.lock")?;
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut todo: Vec<&LockedPackage> = root
        .dependencies
        .iter()
        .filter_map(|d| resolve(d))
        .filter(|p| manifest.dependencies.contains_key(&p.name))
        .collect();
    while let Some(p) = todo.pop() {
        if seen.insert((p.name.clone(), p.version.clone())) {
            todo.extend(p.dependencies.iter().filter_map(|d| resolve(d)));
        }
    }
    let text: String = seen.iter().map(|(n, v)| format!("{n} {v}\n")).collect();
    let out = std::path::Path::new(&std::env::var("OUT_DIR")?).join("dependencies.txt");
    std::fs::write(out, text)?;
    Ok(())
}
