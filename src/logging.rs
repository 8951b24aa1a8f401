//! Logging to stderr through tracing-subscriber: human-readable by default, one JSON object
//! per line with `--log-format json`. `VIGO_LOG` sets the level (error, warn, info, debug).

use tracing::Level;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "human" | "text" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("unknown log format {s:?}: use human or json")),
        }
    }
}

/// The format chosen by `init`, so the final error line can follow it too.
static FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// Whether stderr carries JSON lines (`--log-format json`).
pub fn is_json() -> bool {
    FORMAT.get() == Some(&LogFormat::Json)
}

pub fn init(format: LogFormat) {
    let _ = FORMAT.set(format);
    let level = match std::env::var("VIGO_LOG").as_deref() {
        Ok("error") => Level::ERROR,
        Ok("warn") => Level::WARN,
        Ok("debug") => Level::DEBUG,
        Ok("trace") => Level::TRACE,
        _ => Level::INFO,
    };
    let builder =
        tracing_subscriber::fmt().with_max_level(level).with_writer(std::io::stderr).with_target(false);
    let result = match format {
        LogFormat::Human => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A second init (tests, quickstart running several roles) keeps the first subscriber.
    let _ = result;
}
