//! Compiles Drover's API (`protos/drover/v1/api.proto`) with protox, a
//! pure-Rust protobuf compiler, and generates prost messages and tonic
//! stubs from the descriptor set: building Drover never needs a system
//! `protoc`.

use std::path::PathBuf;

const FILES: &[&str] = &["drover/v1/api.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../protos");
    for f in FILES {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let fds = protox::compile(FILES, [&root])?;
    // The client too: tests and the end-to-end tier use it.
    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(fds)?;
    Ok(())
}
