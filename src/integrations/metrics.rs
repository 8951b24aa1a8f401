//! Prometheus text exposition (format 0.0.4), written by hand: the server's metrics are a fixed
//! set with fixed labels, so each is a plain atomic (no lock, no map) on the paths it counts,
//! and the few lines below render them. `promtool check metrics` checks the output in tests.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Latency buckets in seconds (upper bounds), from 1 ms to 10 s.
pub const LATENCY_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A histogram of durations over `LATENCY_BUCKETS`: one atomic per bucket, the sum in
/// nanoseconds.
#[derive(Debug)]
pub struct Histogram {
    /// Non-cumulative: `counts[i]` holds observations in (bound[i-1], bound[i]]; the last is +Inf.
    counts: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: (0..=LATENCY_BUCKETS.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = LATENCY_BUCKETS.iter().position(|b| secs <= *b).unwrap_or(LATENCY_BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(d.as_nanos().min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
    }
}

/// The text of one scrape, family by family.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

/// `\`, `"` and newlines escaped, as label values need.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn labels(pairs: &[(&str, &str)], extra: Option<(&str, &str)>) -> String {
    let all: Vec<String> =
        pairs.iter().chain(extra.as_ref()).map(|(k, v)| format!("{k}=\"{}\"", escape_label(v))).collect();
    if all.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", all.join(","))
    }
}

impl Exposition {
    /// Starts a family: its HELP and TYPE lines. Samples of it must follow.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, pairs: &[(&str, &str)], value: f64) {
        let _ = writeln!(self.out, "{name}{} {}", labels(pairs, None), number(value));
    }

    /// A family of one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// The `_bucket`, `_sum` and `_count` samples of one labelled histogram.
    pub fn histogram(&mut self, name: &str, pairs: &[(&str, &str)], h: &Histogram) {
        let mut cumulative = 0u64;
        for (i, c) in h.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            let le = LATENCY_BUCKETS.get(i).map_or("+Inf".to_string(), |b| number(*b));
            let _ = writeln!(self.out, "{name}_bucket{} {cumulative}", labels(pairs, Some(("le", &le))));
        }
        let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(self.out, "{name}_sum{} {}", labels(pairs, None), number(sum));
        let _ = writeln!(self.out, "{name}_count{} {cumulative}", labels(pairs, None));
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// The content type of this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_is_written_as_prometheus_reads_it() {
        let mut e = Exposition::default();
        let c = Counter::default();
        c.inc();
        c.add(2);
        e.family("vigo_things_total", "counter", "Things.\nCounted \\ here.");
        e.sample("vigo_things_total", &[("kind", "a\"b\\c\nd")], c.get() as f64);
        let h = Histogram::default();
        h.observe(Duration::from_micros(700));
        h.observe(Duration::from_millis(30));
        h.observe(Duration::from_secs(60));
        e.family("vigo_rpc_duration_seconds", "histogram", "Time.");
        e.histogram("vigo_rpc_duration_seconds", &[("method", "CheckIn")], &h);
        e.single("vigo_up", "gauge", "Up.", f64::INFINITY);
        let text = e.finish();
        assert!(
            text.starts_with(
                "# HELP vigo_things_total Things.\\nCounted \\\\ here.\n# TYPE vigo_things_total counter\n"
            ),
            "{text}"
        );
        assert!(text.contains("vigo_things_total{kind=\"a\\\"b\\\\c\\nd\"} 3\n"), "{text}");
        assert!(
            text.contains("vigo_rpc_duration_seconds_bucket{method=\"CheckIn\",le=\"0.001\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("le=\"0.025\"} 1\n") && text.contains("le=\"0.05\"} 2\n"), "{text}");
        assert!(text.contains("le=\"10\"} 2\n") && text.contains("le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("vigo_rpc_duration_seconds_sum{method=\"CheckIn\"} 60.0307\n"), "{text}");
        assert!(text.contains("vigo_rpc_duration_seconds_count{method=\"CheckIn\"} 3\n"), "{text}");
        assert!(text.ends_with("vigo_up +Inf\n"));
    }
}
