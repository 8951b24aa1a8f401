//! The report `vigocli doctor` and `vigo-agent doctor` print: one line per check, its status,
//! what was found and, when something is wrong, what to do about it.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub check: String,
    pub status: Status,
    pub detail: String,
    /// What to do, when the status is not ok.
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(check: &str, detail: impl Into<String>) -> Check {
        Check { check: check.into(), status: Status::Ok, detail: detail.into(), fix: None }
    }
    pub fn warn(check: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { check: check.into(), status: Status::Warn, detail: detail.into(), fix: Some(fix.into()) }
    }
    pub fn fail(check: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { check: check.into(), status: Status::Fail, detail: detail.into(), fix: Some(fix.into()) }
    }
}

/// Prints the checks (a table, or JSON); Ok when none failed.
pub fn report(checks: &[Check], json: bool) -> crate::exit::CmdResult {
    if json {
        println!("{}", serde_json::to_string_pretty(checks).unwrap_or_default());
    } else {
        let width = checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
        for c in checks {
            let detail = crate::util::text::escape_control(&c.detail);
            match &c.fix {
                Some(fix) => println!("{:<4}  {:<width$}  {detail} — {fix}", c.status.word(), c.check),
                None => println!("{:<4}  {:<width$}  {detail}", c.status.word(), c.check),
            }
        }
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
    if failed > 0 {
        return Err(crate::exit::Failure::failed(format!("{failed} check(s) failed, {warned} warning(s)")));
    }
    if !json {
        println!("{} checks: nothing failed, {warned} warning(s)", checks.len());
    }
    Ok(())
}

/// Days from now until `not_after` (Unix seconds), and the status that deserves.
pub fn expiry(check: &str, what: &str, not_after: i64, renew: &str) -> Check {
    let days = (not_after - crate::util::time::unix_now()).div_euclid(86_400);
    if days < 0 {
        Check::fail(check, format!("{what} expired {} day(s) ago", -days), renew)
    } else if days < 30 {
        Check::warn(check, format!("{what} expires in {days} day(s)"), renew)
    } else {
        Check::ok(check, format!("{what} valid for {days} more days"))
    }
}
