//! Compiles every `.proto` under the workspace's `proto/` with a vendored protoc, so no
//! system protoc is needed, and writes the descriptor set that gRPC reflection serves.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let protos: Vec<PathBuf> = ["events", "ingest", "attribution", "insights", "billboard"]
        .iter()
        .map(|area| root.join(format!("nearline/{area}/v1/{area}.proto")))
        .collect();
    let descriptor_path = PathBuf::from(std::env::var("OUT_DIR")?).join("nearline_descriptor.bin");

    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().file_descriptor_set_path(&descriptor_path).compile_with_config(
        config,
        &protos,
        std::slice::from_ref(&root),
    )?;
    println!("cargo:rerun-if-changed={}", root.display());
    Ok(())
}
