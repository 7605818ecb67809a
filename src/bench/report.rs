//! What a bench prints: a Markdown table of figures against their targets, and the latency
//! statistics the figures are computed from.

use std::io::Write;
use std::time::Duration;

/// One line of a report's table.
#[derive(Debug, Clone)]
pub struct Row {
    pub figure: String,
    pub value: String,
    pub target: String,
    /// `None` for a figure printed for information, with no target.
    pub met: Option<bool>,
}

/// The outcome of one bench: how it was set up, its figures, and notes.
#[derive(Debug, Clone)]
pub struct Report {
    pub title: String,
    pub setup: Vec<String>,
    pub rows: Vec<Row>,
    /// Printed whatever the figures.
    pub notes: Vec<String>,
    /// Printed only when at least one target is missed: why, in one line.
    pub when_missed: Vec<String>,
}

impl Report {
    /// An empty report titled `title`.
    #[must_use]
    pub fn new(title: impl Into<String>) -> Self {
        Self { title: title.into(), setup: Vec::new(), rows: Vec::new(), notes: Vec::new(), when_missed: Vec::new() }
    }

    /// Adds one line describing the setup.
    pub fn setup(&mut self, line: impl Into<String>) {
        self.setup.push(line.into());
    }

    /// Adds a figure with its target; `met` is `None` when the figure has no target.
    pub fn row(&mut self, figure: impl Into<String>, value: impl Into<String>, target: &str, met: Option<bool>) {
        self.rows.push(Row { figure: figure.into(), value: value.into(), target: target.to_owned(), met });
    }

    /// Adds a note printed under the table.
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// Adds a note printed only when a target is missed.
    pub fn if_missed(&mut self, text: impl Into<String>) {
        self.when_missed.push(text.into());
    }

    /// The rows whose target is missed.
    #[must_use]
    pub fn missed(&self) -> Vec<&Row> {
        self.rows.iter().filter(|r| r.met == Some(false)).collect()
    }

    /// Writes the report as Markdown.
    pub fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(out, "## {}", self.title)?;
        writeln!(out)?;
        for line in &self.setup {
            writeln!(out, "- {line}")?;
        }
        if !self.setup.is_empty() {
            writeln!(out)?;
        }
        writeln!(out, "| figure | value | target | met? |")?;
        writeln!(out, "|---|---|---|---|")?;
        for row in &self.rows {
            let met = match row.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "—",
            };
            writeln!(out, "| {} | {} | {} | {met} |", row.figure, row.value, row.target)?;
        }
        writeln!(out)?;
        let missed = self.missed();
        if !missed.is_empty() {
            let names: Vec<&str> = missed.iter().map(|r| r.figure.as_str()).collect();
            writeln!(out, "Missed: {}.", names.join("; "))?;
            for line in &self.when_missed {
                writeln!(out, "Note: {line}")?;
            }
        }
        for line in &self.notes {
            writeln!(out, "Note: {line}")?;
        }
        if !missed.is_empty() || !self.notes.is_empty() {
            writeln!(out)?;
        }
        out.flush()
    }
}

/// Recorded latencies, sorted once for percentiles.
#[derive(Debug, Clone, Default)]
pub struct Latencies(Vec<Duration>);

impl From<Vec<Duration>> for Latencies {
    fn from(mut values: Vec<Duration>) -> Self {
        values.sort_unstable();
        Self(values)
    }
}

impl Latencies {
    /// How many were recorded.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `p`th percentile (nearest rank), zero when empty.
    #[must_use]
    pub fn percentile(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let n = self.0.len();
        // Nearest rank: the smallest value with at least p% of the values at or below it.
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        self.0[rank.clamp(1, n) - 1]
    }

    /// The median.
    #[must_use]
    pub fn p50(&self) -> Duration {
        self.percentile(50.0)
    }

    /// The 99th percentile.
    #[must_use]
    pub fn p99(&self) -> Duration {
        self.percentile(99.0)
    }

    /// The largest value, zero when empty.
    #[must_use]
    pub fn max(&self) -> Duration {
        self.0.last().copied().unwrap_or_default()
    }
}

/// A duration in milliseconds, two decimals under 10 ms, one above.
#[must_use]
pub fn ms(duration: Duration) -> String {
    let millis = duration.as_secs_f64() * 1e3;
    if millis < 10.0 { format!("{millis:.2} ms") } else { format!("{millis:.1} ms") }
}

/// KiB as MiB with one decimal.
#[must_use]
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let latencies = Latencies::from((1..=100).rev().map(Duration::from_millis).collect::<Vec<_>>());
        assert_eq!(latencies.p50(), Duration::from_millis(50));
        assert_eq!(latencies.p99(), Duration::from_millis(99));
        assert_eq!(latencies.max(), Duration::from_millis(100));
        assert_eq!(Latencies::default().p99(), Duration::ZERO);
        assert_eq!(Latencies::from(vec![Duration::from_millis(7)]).p50(), Duration::from_millis(7));
    }

    #[test]
    fn a_missed_target_is_marked_and_explained() {
        let mut report = Report::new("demo");
        report.row("req/s", "900", "≥ 1,000", Some(false));
        report.row("errors", "0", "", None);
        report.if_missed("fsync per commit");
        let mut out = Vec::new();
        report.write(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("| req/s | 900 | ≥ 1,000 | **no** |"), "{text}");
        assert!(text.contains("Note: fsync per commit"), "{text}");
    }
}
