//! Secret providers.
