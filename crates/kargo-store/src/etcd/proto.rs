//! The etcd v3 gRPC messages and clients, generated at build time from the vendored subset of
//! etcd's protocol files in `proto/etcd/` (see `build.rs`).

#![allow(missing_docs, clippy::all, clippy::pedantic, unreachable_pub)]

/// etcd's `mvccpb` package: key-values and watch events.
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}

/// etcd's `authpb` package: permissions.
pub mod authpb {
    tonic::include_proto!("authpb");
}

/// etcd's `etcdserverpb` package: the KV, Watch and Auth services.
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}
