//! Charts as SVG drawn on the server and inlined in the page: no script, no image request.
//! Colours come from the stylesheet by class (CSP allows no inline style); every chart has a
//! `<title>` and a `<desc>` that says in words what it shows.

use std::fmt::Write;

/// Escapes text for SVG (labels are ours, but nothing goes out unescaped).
fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const W: u32 = 720;
const H: u32 = 220;
const LEFT: u32 = 44;
const BOTTOM: u32 = 28;
const TOP: u32 = 12;

/// A round number at or above `max` for the top of the scale.
fn scale_top(max: u64) -> u64 {
    let mut step = 1u64;
    while step * 10 < max {
        step *= 10;
    }
    [1, 2, 5, 10].iter().map(|m| m * step).find(|v| *v >= max).unwrap_or(max).max(1)
}

/// One stacked series: CSS class, label, a value per hour.
pub struct Series<'a> {
    pub class: &'a str,
    pub label: &'a str,
    pub values: Vec<u64>,
}

/// Stacked bars, one per hour (`hours` are hour starts, Unix seconds, oldest first).
pub fn hourly(id: &str, title: &str, hours: &[i64], series: &[Series<'_>]) -> String {
    let totals: Vec<u64> = (0..hours.len())
        .map(|i| series.iter().map(|s| s.values.get(i).copied().unwrap_or(0)).sum())
        .collect();
    let top = scale_top(totals.iter().copied().max().unwrap_or(0));
    let plot_h = H - TOP - BOTTOM;
    let slot = (W - LEFT) as f64 / hours.len().max(1) as f64;
    let sums: Vec<String> =
        series.iter().map(|s| format!("{} {}", s.values.iter().sum::<u64>(), s.label)).collect();
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-labelledby="{id}-t {id}-d" xmlns="http://www.w3.org/2000/svg"><title id="{id}-t">{}</title><desc id="{id}-d">Last 24 hours, per hour: {}.</desc>"#,
        esc(title),
        esc(&sums.join(", "))
    );
    axis(&mut svg, top);
    for (i, hour) in hours.iter().enumerate() {
        let x = LEFT as f64 + i as f64 * slot + slot * 0.15;
        let mut y = (H - BOTTOM) as f64;
        for s in series {
            let v = s.values.get(i).copied().unwrap_or(0);
            if v == 0 {
                continue;
            }
            let h = v as f64 / top as f64 * plot_h as f64;
            y -= h;
            let _ = write!(
                svg,
                r#"<rect class="{}" x="{x:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}"><title>{} {}</title></rect>"#,
                esc(s.class),
                slot * 0.7,
                v,
                esc(s.label)
            );
        }
        if i % 6 == 0 {
            let label = &crate::util::time::rfc3339_millis(hour * 1000)[11..16];
            let _ = write!(svg, r#"<text class="axis" x="{x:.1}" y="{}">{label}</text>"#, H - BOTTOM + 18);
        }
    }
    svg.push_str("</svg>");
    svg
}

fn axis(svg: &mut String, top: u64) {
    let base = H - BOTTOM;
    let _ = write!(
        svg,
        r#"<line class="grid" x1="{LEFT}" y1="{base}" x2="{W}" y2="{base}"/><line class="grid" x1="{LEFT}" y1="{TOP}" x2="{W}" y2="{TOP}"/><text class="axis" x="{}" y="{}" text-anchor="end">{top}</text><text class="axis" x="{}" y="{base}" text-anchor="end">0</text>"#,
        LEFT - 6,
        TOP + 4,
        LEFT - 6,
    );
}

/// Horizontal bars, one per item: (CSS class, label, value).
pub fn horizontal(id: &str, title: &str, items: &[(&str, &str, u64)]) -> String {
    let row = 30u32;
    let height = row * items.len() as u32 + 8;
    let label_w = 210u32;
    let top = scale_top(items.iter().map(|i| i.2).max().unwrap_or(0));
    let words: Vec<String> = items.iter().map(|(_, l, v)| format!("{v} {l}")).collect();
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {W} {height}" role="img" aria-labelledby="{id}-t {id}-d" xmlns="http://www.w3.org/2000/svg"><title id="{id}-t">{}</title><desc id="{id}-d">{}.</desc>"#,
        esc(title),
        esc(&words.join(", "))
    );
    for (i, (class, label, value)) in items.iter().enumerate() {
        let y = 4 + i as u32 * row;
        let w = *value as f64 / top as f64 * (W - label_w - 60) as f64;
        let _ = write!(
            svg,
            r#"<text class="label" x="{}" y="{}" text-anchor="end">{}</text><rect class="{}" x="{label_w}" y="{y}" width="{w:.1}" height="{}"/><text class="axis" x="{:.1}" y="{}">{value}</text>"#,
            label_w - 8,
            y + 19,
            esc(label),
            esc(class),
            row - 8,
            label_w as f64 + w + 6.0,
            y + 19
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_are_round_and_charts_say_what_they_show() {
        assert_eq!(scale_top(0), 1);
        assert_eq!(scale_top(7), 10);
        assert_eq!(scale_top(11), 20);
        assert_eq!(scale_top(4200), 5000);
        let hours: Vec<i64> = (0..24).map(|i| i * 3600).collect();
        let svg = hourly(
            "c",
            "Runs <by> hour",
            &hours,
            &[Series { class: "failed", label: "failed", values: vec![1; 24] }],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("Runs &lt;by&gt; hour"), "escaped");
        assert!(svg.contains("24 failed"), "{svg}");
        assert!(!svg.contains("style="), "no inline style: the CSP forbids it");
        let bars = horizontal("s", "Envoys", &[("converged", "converged", 3), ("failed", "failed", 0)]);
        assert!(bars.contains("3 converged, 0 failed"));
    }
}
