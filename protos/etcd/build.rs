//! Compiles Drover's etcd `.proto` subset (`proto/`) with protox, a pure-Rust
//! protobuf compiler, and generates prost messages and tonic stubs from the
//! descriptor set: building Drover never needs a system `protoc`.

use std::path::PathBuf;

const FILES: &[&str] = &["mvccpb/kv.proto", "etcdserverpb/rpc.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("proto");
    for f in FILES {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let fds = protox::compile(FILES, [&root])?;
    // Servers too: the crate's tests run fake etcd servers that answer badly.
    // No derived `Debug` for the messages that carry a password or a token:
    // `lib.rs` implements one that hides them.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .skip_debug([".etcdserverpb.AuthenticateRequest", ".etcdserverpb.AuthenticateResponse"])
        .compile_fds(fds)?;
    Ok(())
}
