use super::attrs::Attrs;
use super::{Ctx, Outcome};
pub(crate) fn user(_a: &Attrs, _ctx: &Ctx) -> Outcome { Err("user: not built yet".to_string().into()) }
pub(crate) fn group(_a: &Attrs, _ctx: &Ctx) -> Outcome { Err("group: not built yet".to_string().into()) }
