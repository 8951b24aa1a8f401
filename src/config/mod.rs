//! The .vgo configuration language.
