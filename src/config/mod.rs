//! The .vgo configuration language.

mod yaml;
