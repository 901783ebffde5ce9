//! Shared by the raftkv programs: the gRPC code generated from `proto/`,
//! the client library, the runtime set-up and the duration syntax of every
//! command line.

/// `raftkv.v1`: the public KV service and the internal Raft peer service.
pub mod proto {
    tonic::include_proto!("raftkv.v1");

    /// Encoded file descriptors of `proto/`, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("raftkv_descriptor");
}

pub mod client;
pub mod duration;
pub mod runtime;
