use super::attrs::Attrs;
use super::{Ctx, Outcome};
pub(crate) fn apply(_a: &Attrs, _ctx: &Ctx) -> Outcome { Err("package: not built yet".to_string().into()) }
