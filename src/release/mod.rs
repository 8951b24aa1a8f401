//! Trust in the binary: release keys, signed manifests, the startup gate, tamper signals, and
//! the version stamp. Shared by every role (docs/OPERATIONS.md, "Signed releases").

pub mod gate;
pub mod keys;
pub mod manifest;
pub mod stamp;
pub mod tamper;

pub use stamp::version;
