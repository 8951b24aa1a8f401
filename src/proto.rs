//! Generated protobuf and gRPC code for `proto/vigo/v1/agent.proto`.
#![allow(clippy::all, clippy::pedantic)]

pub mod v1 {
    tonic::include_proto!("vigo.v1");
}
