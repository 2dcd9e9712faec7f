//! Tests of the parallel map on simulated ranks (threads).

use super::*;
use crate::comm::run_threads;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

fn schedules() -> [Schedule; 5] {
    [Schedule::Static, Schedule::Dynamic { chunk: 1 }, Schedule::Dynamic { chunk: 7 }, Schedule::Guided { chunk: 1 }, Schedule::Guided { chunk: 7 }]
}

/// Uneven costs: every 13th item sleeps.
fn work(i: &u64) -> u64 {
    if i.is_multiple_of(13) {
        std::thread::sleep(std::time::Duration::from_micros(300));
    }
    i * i + 1
}

#[test]
fn results_come_back_in_input_order_on_every_rank() {
    for ranks in [1, 2, 3, 5, 8] {
        for n in [0usize, 1, 3, 200] {
            let items: Vec<u64> = (0..n as u64).collect();
            let want: Vec<u64> = items.iter().map(work).collect();
            for schedule in schedules() {
                for threads in [1, 3] {
                    let opts = Options { schedule, threads, serial: Some(false), progress: None };
                    let got = run_threads(ranks, |c| parallelize_with(c, &items, &opts, |_, x| Ok::<_, String>(work(x))).unwrap());
                    for g in &got {
                        assert_eq!(g, &want, "{ranks} ranks, {n} items, {schedule:?}, {threads} threads");
                    }
                }
            }
        }
    }
}

#[test]
fn every_item_runs_exactly_once() {
    let items: Vec<u64> = (0..500).collect();
    for schedule in schedules() {
        let runs: Vec<AtomicUsize> = (0..500).map(|_| AtomicUsize::new(0)).collect();
        run_threads(4, |c| {
            let opts = Options { schedule, threads: 2, serial: Some(false), progress: None };
            parallelize_with(c, &items, &opts, |ctx, &x| {
                assert_eq!(ctx.index() as u64, x);
                runs[x as usize].fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>(())
            })
            .unwrap()
        });
        assert!(runs.iter().all(|r| r.load(Ordering::SeqCst) == 1), "{schedule:?}");
    }
}

#[test]
fn the_lowest_failing_item_is_reported_everywhere_and_nothing_hangs() {
    let items: Vec<u64> = (0..300).collect();
    for schedule in schedules() {
        let got = run_threads(3, |c| {
            let opts = Options { schedule, threads: 2, serial: Some(false), progress: None };
            parallelize_with(c, &items, &opts, |_, &x| {
                if x == 250 {
                    panic!("boom at {x}");
                }
                if x == 170 || x == 171 {
                    return Err(format!("bad item {x}"));
                }
                Ok(work(&x))
            })
            .unwrap_err()
        });
        for e in &got {
            match e {
                // Item 250 may have run before 170 failed (static), but 170 is reported.
                Error::Item { index, msg, .. } => assert_eq!((*index, msg.as_str()), (170, "bad item 170"), "{schedule:?}"),
                e => panic!("{e}"),
            }
        }
    }
    // A panic alone: its message.
    let got = run_threads(2, |c| parallelize(c, &[1u8, 2, 3], |_, &x| if x == 2 { panic!("two") } else { Ok::<_, String>(x) }).unwrap_err().to_string());
    assert!(got.iter().all(|e| e.contains("item 1") && e.contains("panicked: two")), "{got:?}");
}

#[test]
fn ordered_sections_run_in_item_order_and_critical_ones_alone() {
    let items: Vec<u64> = (0..120).collect();
    // One thread per rank too: a rank whose only worker has just left a critical section
    // must still pass on its unlock before it says it is finished.
    for (ranks, threads) in [(1, 2), (2, 2), (3, 1), (4, 1), (4, 2)] {
        for schedule in schedules() {
            let seq = Mutex::new(Vec::new());
            let (inside, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
            run_threads(ranks, |c| {
                let opts = Options { schedule, threads, serial: Some(false), progress: None };
                parallelize_with(c, &items, &opts, |ctx, &x| {
                    let v = work(&x);
                    // Items divisible by 3 have no ordered section: they pass when they end.
                    if x % 3 != 0 {
                        ctx.ordered(|| seq.lock().unwrap().push(x));
                    }
                    if x % 2 == 0 {
                        ctx.critical(|| {
                            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_micros(50));
                            inside.fetch_sub(1, Ordering::SeqCst);
                        });
                    }
                    Ok::<_, String>(v)
                })
                .unwrap()
            });
            let want: Vec<u64> = items.iter().copied().filter(|x| x % 3 != 0).collect();
            assert_eq!(*seq.lock().unwrap(), want, "{ranks} ranks, {schedule:?}");
            assert_eq!(most.load(Ordering::SeqCst), 1, "{ranks} ranks, {schedule:?}");
        }
    }
}

#[test]
fn back_to_back_maps_leave_no_message_to_the_next_one() {
    // A rank's last "items passed" message could stay unread when rank 0 ended a map, and
    // then mark items of the next map as passed: an ordered turn never came (a hang seen
    // with 4 ranks). Many short maps in a row, each with ordered sections, under a watchdog.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let items: Vec<u64> = (0..40).collect();
        let seqs: Vec<Mutex<Vec<u64>>> = (0..60).map(|_| Mutex::new(Vec::new())).collect();
        run_threads(4, |c| {
            let opts = Options { schedule: Schedule::Dynamic { chunk: 1 }, threads: 2, serial: Some(false), progress: None };
            for seq in &seqs {
                parallelize_with(c, &items, &opts, |_, &x| Ok::<_, String>(x)).unwrap();
                parallelize_with(c, &items, &opts, |ctx, &x| {
                    ctx.ordered(|| seq.lock().unwrap().push(x));
                    Ok::<_, String>(())
                })
                .unwrap();
            }
        });
        let _ = tx.send(seqs.into_iter().map(|s| s.into_inner().unwrap()).collect::<Vec<_>>());
    });
    let seqs = rx.recv_timeout(std::time::Duration::from_secs(120)).expect("back-to-back maps hung");
    for seq in seqs {
        assert_eq!(seq, (0..40).collect::<Vec<u64>>());
    }
}

#[test]
fn results_to_root_come_only_to_rank_0_and_errors_to_everyone() {
    let items: Vec<u64> = (0..77).collect();
    let want: Vec<u64> = items.iter().map(work).collect();
    for ranks in [1, 2, 3, 5] {
        for schedule in schedules() {
            let opts = Options { schedule, threads: 2, serial: Some(false), progress: None };
            let got = run_threads(ranks, |c| parallelize_to_root(c, &items, &opts, |_, x| Ok::<_, String>(work(x))).unwrap());
            assert_eq!(got[0].as_ref(), Some(&want), "{ranks} ranks {schedule:?}");
            assert!(got[1..].iter().all(Option::is_none));
            let errs =
                run_threads(ranks, |c| parallelize_to_root(c, &items, &opts, |_, &x| if x == 40 { Err("forty") } else { Ok(x) }).unwrap_err().to_string());
            assert!(errs.iter().all(|e| e.contains("item 40") && e.contains("forty")), "{errs:?}");
        }
    }
}

#[test]
fn map_reduce_folds_in_item_order() {
    let items: Vec<u64> = (0..57).collect();
    let want: String = items.iter().map(|x| format!("{x};")).collect();
    for ranks in [1, 3, 4] {
        let got = run_threads(ranks, |c| {
            let opts = Options { threads: 2, serial: Some(false), ..Options::default() };
            let s = map_reduce(c, &items, &opts, |_, x| Ok::<_, String>(format!("{x};")), |a, b| a + &b).unwrap();
            let mut seen = Vec::new();
            map_reduce_serial(c, &items, &opts, |_, x| Ok::<_, String>(x * 2), |i, r| seen.push((i, r))).unwrap();
            (s, seen)
        });
        for (r, (s, seen)) in got.iter().enumerate() {
            assert_eq!(s.as_deref(), Some(want.as_str()));
            let expect: Vec<(usize, u64)> = if r == 0 { items.iter().map(|&x| (x as usize, x * 2)).collect() } else { Vec::new() };
            assert_eq!(seen, &expect);
        }
    }
    let none = run_threads(2, |c| map_reduce(c, &[] as &[u64], &Options::default(), |_, x| Ok::<_, String>(*x), |a, b| a + b).unwrap());
    assert_eq!(none, [None, None]);
}

#[test]
fn serial_mode_runs_in_order_on_the_calling_thread() {
    let items: Vec<u64> = (0..20).collect();
    let caller = std::thread::current().id();
    let order = Mutex::new(Vec::new());
    let opts = Options { serial: Some(true), ..Options::default() };
    let got = parallelize_with(&crate::comm::SingleComm, &items, &opts, |ctx, &x| {
        assert_eq!(std::thread::current().id(), caller);
        order.lock().unwrap().push(ctx.index());
        Ok::<_, String>(x + 1)
    })
    .unwrap();
    assert_eq!(got, (1..21).collect::<Vec<u64>>());
    assert_eq!(*order.lock().unwrap(), (0..20).collect::<Vec<usize>>());
}

#[test]
fn ordered_outside_a_map_goes_rank_by_rank() {
    let seq = Mutex::new(Vec::new());
    run_threads(5, |c| ordered(c, || seq.lock().unwrap().push(c.rank())));
    assert_eq!(*seq.lock().unwrap(), [0, 1, 2, 3, 4]);
}
