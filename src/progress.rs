//! A progress line for long passes over the data, drawn by rank 0 on stderr.
//!
//! Rank 0 knows only its own position; it estimates the whole job's from its fraction of its own
//! bytes (ranks read at about the same rate) times the bytes of all ranks, so drawing needs no
//! communication. On a terminal the line is redrawn in place; with `--progress always` to a
//! file or pipe (a batch log) a line is printed every 10 seconds ($FLOWMPI_PROGRESS_EVERY).

use std::io::Write;
use std::time::{Duration, Instant};

pub use crate::log::Style;

/// One pass's progress line (rank 0 only; other ranks get none).
pub struct Progress {
    label: String,
    style: Style,
    ranks: f64,
    local_total: f64,
    total: f64,
    t0: Instant,
    last: Option<Instant>,
    drawn: bool,
    rows: u64,
    quiet_start: Duration,
    every: Duration,
    /// Counting items (a map's tasks) instead of bytes read.
    items: bool,
}

/// Seconds before the first line (a quick pass prints nothing extra) and between lines in a log
/// file: 1 and 10, or both `$FLOWMPI_PROGRESS_EVERY` (e.g. 60 for long batch jobs).
fn intervals() -> (Duration, Duration) {
    // try_from: inf, NaN or 1e30 seconds are no duration (from_secs_f64 panicked on them).
    match std::env::var("FLOWMPI_PROGRESS_EVERY").ok().and_then(|v| v.trim().parse::<f64>().ok()).and_then(|v| Duration::try_from_secs_f64(v).ok()) {
        Some(s) => (s, s),
        None => (Duration::from_secs(1), Duration::from_secs(10)),
    }
}

impl Progress {
    /// A progress line for a pass reading `local_total` bytes here and `total` over `ranks`
    /// ranks; `None` off rank 0, with `Style::Off`, or with nothing to read.
    pub fn start(log: &crate::log::Log, label: impl Into<String>, ranks: usize, local_total: u64, total: u64) -> Option<Progress> {
        if log.rank != 0 || log.progress == Style::Off || local_total == 0 {
            return None;
        }
        Some(Progress {
            label: label.into(),
            style: log.progress,
            ranks: ranks as f64,
            local_total: local_total as f64,
            total: total as f64,
            t0: Instant::now(),
            last: None,
            drawn: false,
            rows: 0,
            quiet_start: intervals().0,
            every: if log.progress == Style::Bar { Duration::from_millis(200) } else { intervals().1 },
            items: false,
        })
    }

    /// A progress line for `total` items of a parallel map (a task farm's tasks), counted as
    /// they finish on any rank; `None` off rank 0, with `Style::Off`, or with no items.
    pub fn items(log: &crate::log::Log, label: impl Into<String>, total: u64) -> Option<Progress> {
        let mut p = Progress::start(log, label, 1, total, total)?;
        p.items = true;
        Some(p)
    }

    /// `done` of the items have finished.
    pub fn items_done(&mut self, done: u64) {
        self.update(done, done);
    }

    /// Count a chunk read (rows read from a file carry their position).
    pub fn chunk(bar: &mut Option<Progress>, chunk: &crate::io::Chunk) {
        if let (Some(bar), Some(o)) = (bar, chunk.origin) {
            bar.rows += chunk.rows() as u64;
            bar.update(o.read, bar.rows);
        }
    }

    /// Rank 0 has read `read` of its bytes and `rows` rows.
    fn update(&mut self, read: u64, rows: u64) {
        let now = Instant::now();
        if now - self.t0 < self.quiet_start || self.last.is_some_and(|t| now - t < self.every) {
            return;
        }
        self.last = Some(now);
        let secs = (now - self.t0).as_secs_f64().max(1e-9);
        let frac = (read as f64 / self.local_total).clamp(0.0, 1.0);
        let eta = if frac > 0.0 { secs * (1.0 - frac) / frac } else { f64::NAN };
        let line = if self.items {
            format!("flowmpi: {}: {read} of {} done ({:.0}%), {}/s, ETA {}", self.label, self.total, 100.0 * frac, count(read as f64 / secs), duration(eta))
        } else {
            format!(
                "flowmpi: {}: {} of ~{} ({:.0}%), {} rows/s, ETA {}",
                self.label,
                bytes(frac * self.total),
                bytes(self.total),
                100.0 * frac,
                count(rows as f64 * self.ranks / secs),
                duration(eta)
            )
        };
        let mut err = std::io::stderr().lock();
        let _ = match self.style {
            Style::Bar => write!(err, "\r\x1b[K{line}"),
            _ => writeln!(err, "{line}"),
        };
        let _ = err.flush();
        self.drawn = true;
    }
}

impl Drop for Progress {
    /// Clear the redrawn line, so the next message starts on a clean line.
    fn drop(&mut self) {
        if self.drawn && self.style == Style::Bar {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
        }
    }
}

/// 1234567 → "1.2 MB".
pub fn bytes(b: f64) -> String {
    scaled(b, "B")
}

/// 1234567 → "1.2 M".
fn count(n: f64) -> String {
    scaled(n, "").trim_end().to_string()
}

fn scaled(v: f64, unit: &str) -> String {
    let (v, prefix) = match v {
        v if v >= 1e12 => (v / 1e12, "T"),
        v if v >= 1e9 => (v / 1e9, "G"),
        v if v >= 1e6 => (v / 1e6, "M"),
        v if v >= 1e3 => (v / 1e3, "k"),
        v => (v, ""),
    };
    if prefix.is_empty() {
        format!("{v:.0} {unit}")
    } else {
        format!("{v:.1} {prefix}{unit}")
    }
}

/// Seconds as "42 s", "3 min 05 s", "2 h 10 min".
fn duration(s: f64) -> String {
    if !s.is_finite() {
        return "?".into();
    }
    let s = s.round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_as_people_write_them() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1_234_567.0), "1.2 MB");
        assert_eq!(bytes(4.8e9), "4.8 GB");
        assert_eq!(count(3_100_000.0), "3.1 M");
        assert_eq!(count(12.0), "12");
        assert_eq!(duration(9.4), "9 s");
        assert_eq!(duration(185.0), "3 min 05 s");
        assert_eq!(duration(7800.0), "2 h 10 min");
        assert_eq!(duration(f64::NAN), "?");
    }

    #[test]
    fn only_rank_0_with_a_style_and_data_draws() {
        let log = |rank, progress| crate::log::Log { level: 1, rank, progress };
        assert!(Progress::start(&log(0, Style::Bar), "x", 2, 10, 20).is_some());
        assert!(Progress::start(&log(1, Style::Bar), "x", 2, 10, 20).is_none());
        assert!(Progress::start(&log(0, Style::Off), "x", 2, 10, 20).is_none());
        assert!(Progress::start(&log(0, Style::Lines), "x", 2, 0, 20).is_none());
        assert_eq!(Style::choose("never"), Style::Off);
    }
}
