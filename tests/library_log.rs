//! flowmpi's log lines reach a host's logger through the `log` facade (target "flowmpi"), at
//! the levels `Log` allows, from rank 0 only; with no logger installed nothing is printed.

use flowmpi::comm::run_threads;
use flowmpi::flow::TrainOptions;
use flowmpi::io::{DataOptions, Dataset};
use flowmpi::log::Log;
use flowmpi::log::Style;
use flowmpi::{Comm, Flow};
use std::sync::Mutex;

static LINES: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        assert_eq!(r.target(), "flowmpi");
        LINES.lock().unwrap().push((r.level(), r.args().to_string()));
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

#[test]
fn log_lines_go_to_the_hosts_logger_from_rank_0_at_the_allowed_levels() {
    log::set_logger(&CAPTURE).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/example/part*.csv").display().to_string();
    for level in [0u8, 1, 2] {
        LINES.lock().unwrap().clear();
        run_threads(3, |comm| {
            let log = Log { level, rank: comm.rank(), progress: Style::Off };
            let ds = Dataset::open(comm, &DataOptions::new(data.clone())).unwrap();
            Flow::parse("moments | pca(n=2)").unwrap().train(comm, &ds, &TrainOptions { log, ..Default::default() }).unwrap();
        });
        let lines = LINES.lock().unwrap().clone();
        let trained = lines.iter().filter(|(l, m)| *l == log::Level::Info && m.starts_with("trained moments, pca")).count();
        let details = lines.iter().filter(|(l, _)| *l == log::Level::Debug).count();
        match level {
            0 => assert!(lines.is_empty(), "quiet, yet: {lines:?}"),
            // One line per pass, from rank 0 alone (three ranks ran).
            1 => assert!(trained == 1 && details == 0, "{lines:?}"),
            _ => assert!(trained == 1 && details > 0, "{lines:?}"),
        }
    }
}
