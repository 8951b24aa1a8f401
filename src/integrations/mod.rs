//! Integrations: the audit chain fanned out to outside systems (syslog, webhook and JSON Lines
//! file sinks, each with a durable cursor; see `dispatcher`), and the Prometheus exposition
//! primitives the server's `/metrics` is written with.

pub mod dispatcher;
pub mod jsonl;
pub mod metrics;
pub mod process;
mod status;
pub mod syslog;
pub mod webhook;

pub use status::{Board, SinkReport};
