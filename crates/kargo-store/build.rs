//! Compiles the vendored etcd protocol files (`proto/etcd/`) into the gRPC client of the etcd
//! backend.
//!
//! `protoc` comes from the `protoc-bin-vendored` crate, never from the PATH, so building needs
//! nothing installed by hand (see `docs/storage.md`, "Why this etcd client").

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    println!("cargo:rerun-if-changed=proto/etcd");
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_with_config(
            config,
            &[
                "proto/etcd/rpc.proto",
                "proto/etcd/kv.proto",
                "proto/etcd/auth.proto",
            ],
            &["proto/etcd"],
        )?;
    Ok(())
}
