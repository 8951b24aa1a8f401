//! Small shared helpers: atomic files, lock files, time, host lookups without NSS, prompts.

pub mod fsutil;
pub mod hosts;
pub mod lock;
pub mod prompt;
pub mod time;
pub mod users;
