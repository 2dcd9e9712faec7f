//! The command line: `flowmpi train | execute | inspect | stats | score | map | sort`.
//!
//! Every MPI command ends with one agreement step, so all ranks exit together with the same
//! status; rank 0 prints the one error message.

use crate::comm::{agree, Comm, Context};
use crate::error::{Error, Result};
use crate::io::{DataOptions, Dataset, Format, NanPolicy};
use crate::log::{plural, Log};
use crate::model::Model;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

mod execute;
mod map;
mod plot;
mod sort;
mod stats;
mod stdout;
mod train;

use stdout::outln;

pub use execute::ExecuteArgs;
pub use map::MapArgs;
pub use plot::PlotArgs;
pub use stats::StatsArgs;
pub use train::TrainArgs;

const AFTER_HELP: &str = "\
Run under MPI with `mpirun -n 4 flowmpi train ...` or `srun flowmpi train ...`; without a
launcher flowmpi runs as one rank. Every rank reads its own shards; the trained model is
identical on all ranks and rank 0 writes it.

Examples:
  mpirun -n 4 flowmpi train --data 'data/example/part{rank}.csv' --flow 'pca(n=3)' --model model.json
  mpirun -n 4 flowmpi execute --model model.json --data 'data/example/part{rank}.csv' --out 'out/part{rank}.csv'
  flowmpi inspect model.json
  mpirun -n 2 flowmpi stats --data data/example --columns 0-3";

/// Train and run MDP-style flows of statistical nodes over sharded data with MPI.
#[derive(Parser, Debug)]
#[command(name = "flowmpi", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Print only errors and warnings.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Per-rank detail: rows and seconds of every rank, model hashes.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Run even when the launcher says N processes but MPI sees a world of 1 (normally an
    /// error: each process would run alone on its own shard).
    #[arg(long, global = true)]
    pub allow_launch_mismatch: bool,
    /// Progress of long passes (bytes of all ranks, rows/s, ETA), drawn by rank 0: 'auto' on a
    /// terminal (also mpirun's), 'always' also into a log file (a line every 10 s), 'never'.
    /// Off with -q.
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto", value_parser = ["auto", "always", "never"])]
    pub progress: String,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Sub-commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a flow over all ranks' shards and write the model (rank 0, atomically).
    #[command(after_help = crate::nodes::help())]
    Train(TrainArgs),
    /// Run a trained flow: each rank writes its own transformed shard, rows in input order.
    Execute(ExecuteArgs),
    /// Print a readable summary of a model file (no MPI needed).
    Inspect(InspectArgs),
    /// Draw what a model learned as an SVG or PNG: one node's figure (no MPI needed), or with
    /// --data the flow's first two outputs for a sample of all ranks' rows.
    Plot(plot::PlotArgs),
    /// Print per-column low-order moments of the data (a table, or JSON).
    Stats(StatsArgs),
    /// Score a trained supervised or k-means flow on data over all ranks: R² and RMSE,
    /// accuracy and confusion matrix, or inertia.
    Score(ScoreArgs),
    /// A task farm: run a command once per line of a task file, spread over all ranks (and
    /// threads), e.g. `mpirun -n 8 flowmpi map --tasks subjects.txt -- ./analyse {}`.
    Map(map::MapArgs),
    /// Sort all ranks' rows by one column (a distributed stable sort): each rank writes one
    /// contiguous slice of the sorted rows and/or their global row indices (argsort).
    Sort(sort::SortArgs),
}

/// Where the data is and how to parse it.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Input shards: a pattern with {rank} (or {}) and {size}, e.g. 'data/part{rank}.csv'; a glob
    /// ('data/*.npy') or a directory, whose sorted files are dealt out in order by bytes, so that
    /// ranks read about equal amounts (a file larger than a rank's share is split among ranks);
    /// or one CSV/NPY/Parquet/HDF5 file that the ranks split among themselves (CSV by line-aligned byte
    /// ranges, NPY and HDF5 by rows, Parquet by row groups). Compressed CSV (.csv.gz, .csv.zst, .tsv.gz,
    /// ...) is streamed; such a file cannot be split, so it goes whole to one rank: give several
    /// for several ranks. Parquet: numeric columns as numbers, string columns as labels.
    /// HDF5: 'run.h5:/group/dataset' (a glob or pattern before the colon for several files), one
    /// 1-D or 2-D numeric dataset per file, split by rows (each rank reads only its rows).
    /// Compressed CSV and HDF5 are read, not written.
    #[arg(long, value_name = "SPEC")]
    pub data: String,
    /// How to read it.
    #[command(flatten)]
    pub read: ReadArgs,
}

/// How to read the data (`DataArgs` without the spec: `plot` reads data only when given one).
#[derive(Args, Debug, Clone)]
pub struct ReadArgs {
    /// File format; chosen by extension by default (.npy = npy, .parquet/.pq = parquet,
    /// .h5/.hdf5/.he5 = hdf5, anything else = csv).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// HDF5: the dataset to read in every file, e.g. '/sim/fields' (or give it in --data as
    /// 'run.h5:/sim/fields'). Default: the file's only dataset. Its column names come from its
    /// 'columns', 'column_names' or 'names' attribute (strings), else x0, x1, ...
    #[arg(long, value_name = "PATH")]
    pub dataset: Option<String>,
    /// The CSV files have a header line (auto-detected by default: a non-numeric field).
    #[arg(long, conflicts_with = "no_header")]
    pub header: bool,
    /// The CSV files have no header line.
    #[arg(long)]
    pub no_header: bool,
    /// CSV field delimiter (one character; 'tab' or '\t' for tabs). Default ',' (tab for .tsv).
    #[arg(long, value_name = "CHAR")]
    pub delimiter: Option<String>,
    /// Feature columns by header name or 0-based index into the file's columns, with inclusive
    /// ranges: 'x0,x1,x5', '0-5'. Default: all columns except the flow's target and label
    /// columns (and --keep's). (Indices in a flow's layer(... @ 0-3) count the selected
    /// columns instead.)
    #[arg(long, value_name = "LIST")]
    pub columns: Option<String>,
    /// Columns to leave out of the features, by name or 0-based index, with ranges: text
    /// columns such as IDs or timestamps ('--exclude id,date'), so that the rest need not all be
    /// listed in --columns.
    #[arg(long, value_name = "LIST")]
    pub exclude: Option<String>,
    /// What to do with NaN, ±inf or empty values in the selected columns.
    #[arg(long, value_enum, default_value = "error")]
    pub nan: NanArg,
    /// Threads per rank: they parse, accumulate every node's statistics, run k-means' steps
    /// and map rows (execute, score). The model is the same bits for any count. Default:
    /// $FLOWMPI_THREADS, else the cores the launcher bound this rank to, else cores / ranks on
    /// the node (-v says which).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// With a {rank} pattern, read only the files of ranks 0..N-1 even when files for further
    /// ranks exist (by default that is an error: they would silently not be read).
    #[arg(long)]
    pub allow_unread: bool,
    /// Read block size in bytes (memory per rank is a few blocks plus the node state).
    #[arg(long, default_value_t = 4 << 20, hide = true)]
    pub block_bytes: usize,
}

/// `--format` values.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum FormatArg {
    /// Delimited text.
    Csv,
    /// NumPy .npy (float, int, uint or bool of any width, C order; converted to float64).
    Npy,
    /// Apache Parquet (numeric columns as float64, string columns as labels; split by row groups).
    Parquet,
    /// HDF5 (.h5, .hdf5, .he5): one 1-D or 2-D numeric dataset per file, converted to float64.
    Hdf5,
}

/// `--nan` values.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum NanArg {
    /// Stop with an error naming rank, file and line.
    Error,
    /// Drop rows holding NaN/inf/empty values (counted in the log).
    Skip,
}

impl DataArgs {
    fn options(&self) -> Result<DataOptions> {
        self.read.options(&self.data)
    }
}

impl ReadArgs {
    fn options(&self, spec: &str) -> Result<DataOptions> {
        let delimiter = match self.delimiter.as_deref() {
            None => None,
            Some("tab") | Some("\\t") | Some("\t") => Some(b'\t'),
            Some("\"") => return Err(Error::Param("--delimiter '\"': the double quote is CSV's quoting character and cannot separate fields".into())),
            Some("\n") | Some("\r") => return Err(Error::Param("--delimiter: a line break ends rows and cannot separate fields".into())),
            Some(s) if s.len() == 1 => Some(s.as_bytes()[0]),
            Some(s) => return Err(Error::Param(format!("--delimiter must be one ASCII character (or 'tab'), got {}", crate::io::quote(s.as_bytes())))),
        };
        let mut o = DataOptions::new(spec);
        o.format = self.format.map(|f| match f {
            FormatArg::Csv => Format::Csv,
            FormatArg::Npy => Format::Npy,
            FormatArg::Parquet => Format::Parquet,
            FormatArg::Hdf5 => Format::Hdf5,
        });
        o.dataset = self.dataset.clone();
        o.header = if self.header {
            Some(true)
        } else if self.no_header {
            Some(false)
        } else {
            None
        };
        o.delimiter = delimiter;
        o.columns = self.columns.clone();
        o.exclude = self.exclude.clone();
        o.nan = match self.nan {
            NanArg::Error => NanPolicy::Error,
            NanArg::Skip => NanPolicy::Skip,
        };
        o.block_bytes = self.block_bytes.max(1024);
        o.allow_unread = self.allow_unread;
        o.threads = match self.threads {
            Some(n) => crate::cores::check_threads(n, "--threads")?,
            None => crate::cores::threads_per_rank(),
        };
        Ok(o)
    }
}

/// `flowmpi score`.
#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// The trained model.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Data options (features by the model's column names; targets/labels as trained).
    #[command(flatten)]
    pub data: DataArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `flowmpi inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The model file.
    pub model: PathBuf,
    /// Print the model's arrays as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Show every value of every array in the summary (by default the first six).
    #[arg(long)]
    pub full: bool,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    // A usage error (or --help) is the same on every rank: print it once, from rank 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if crate::launch::launcher_rank() == 0 => e.exit(),
        Err(e) => std::process::exit(e.exit_code()),
    };
    let level = if cli.quiet {
        0
    } else if cli.verbose {
        2
    } else {
        1
    };
    let alone = match &cli.command {
        Command::Inspect(a) => Some(inspect(a)),
        Command::Plot(a) if !a.reads_data() => {
            crate::log::StderrLogger::install();
            Some(plot::plot_model(a, &Log { level, rank: 0, progress: crate::progress::Style::Off }))
        }
        _ => None,
    };
    if let Some(done) = alone {
        return match done {
            Ok(()) => ExitCode::SUCCESS,
            Err(Error::ClosedPipe) => closed_pipe(),
            Err(e) => {
                crate::log::to_stderr(&format!("flowmpi: error: {e}"));
                ExitCode::FAILURE
            }
        };
    }
    let shared_memory = crate::launch::prefer_shared_memory();
    remove_temporaries_on_signals();
    crate::launch::configure_blas_threads();
    let ctx = Context::init();
    // The CLI owns its process: a panic nothing caught removes this rank's unfinished output
    // files and ends the whole job, so that no peer waits forever in a collective.
    let abort = ctx.job_abort();
    crate::panics::install_hook(Box::new(move || {
        crate::io::remove_temporaries();
        if let Some(abort) = &abort {
            abort();
        }
    }));
    let comm = ctx.comm();
    let progress = if cli.quiet { crate::progress::Style::Off } else { crate::progress::Style::choose(&cli.progress) };
    let log = Log { level, rank: comm.rank(), progress };
    crate::log::StderrLogger::install();
    crate::log::set_global(log);
    if shared_memory {
        log.detail("one node: Open MPI pml ob1 (shared memory); set OMPI_MCA_pml to choose another");
    }
    let launched = crate::cores::check_threads_variable().and_then(|()| crate::launch::check_launch(comm, &log, cli.allow_launch_mismatch));
    let res = launched.and_then(|()| match &cli.command {
        Command::Train(a) => train::train(comm, a, &log),
        Command::Execute(a) => execute::execute(comm, a, &log),
        Command::Stats(a) => stats::stats(comm, a, &log),
        Command::Score(a) => score(comm, a, &log),
        Command::Map(a) => map::map(comm, a, &log),
        Command::Sort(a) => sort::sort(comm, a, &log),
        Command::Plot(a) => plot::plot_data(comm, a, &log),
        Command::Inspect(_) => unreachable!(),
    });
    // Every error path above already agreed; this last agreement makes the exit collective even
    // if one did not, and leaves exactly one message, printed by rank 0.
    let res = agree(comm, res);
    let code = match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::ClosedPipe) => closed_pipe(),
        Err(e) => {
            if comm.rank() == 0 {
                crate::log::to_stderr(&format!("flowmpi: error: {e}"));
            }
            ExitCode::FAILURE
        }
    };
    drop(ctx);
    code
}

/// A closed standard output ends the command without a message, with the status a shell
/// gives a program that SIGPIPE ended (128 + 13), as `set -o pipefail` expects.
fn closed_pipe() -> ExitCode {
    ExitCode::from(141)
}

/// On SIGTERM, SIGINT or SIGHUP (a batch system's time limit, Ctrl-C, a lost terminal) remove
/// this rank's unfinished output files, then end as the signal would have. A checkpointed
/// iterative training (k-means with --checkpoint) is asked to stop after its current step
/// instead, on SIGTERM and on SIGUSR1/SIGUSR2 (Slurm's `--signal` warning); more of those are
/// then ignored, and SIGINT ends the process.
fn remove_temporaries_on_signals() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2]) else { return };
    std::thread::spawn(move || {
        let mut asked = false;
        for sig in signals.forever() {
            let gentle = [SIGTERM, SIGUSR1, SIGUSR2].contains(&sig);
            // Once a stop is under way, more gentle signals change nothing: Slurm's time limit
            // reaches each task twice (from slurmstepd, and forwarded by srun), and mpirun
            // sends SIGTERM to the ranks still finishing when the first one exits. SIGINT
            // (Ctrl-C) still ends the process at once, and the batch system's SIGKILL follows
            // its grace period anyway.
            if gentle && asked {
                if sig == SIGTERM {
                    crate::taskfarm::kill_running();
                }
                continue;
            }
            if gentle && crate::stop::request_stop() {
                asked = true;
                // The time limit itself (SIGTERM): a task farm's running tasks are killed now,
                // before the batch system's SIGKILL, so that the map can still report what
                // finished; after a warning (USR1/USR2) they may finish.
                if sig == SIGTERM {
                    crate::taskfarm::kill_running();
                }
                let log = crate::log::global();
                if log.rank == 0 && log.level >= 1 {
                    crate::log::to_stderr(&format!("flowmpi: signal {sig}: stopping cleanly: no new iteration or task starts, what finished is kept"));
                }
                continue;
            }
            crate::io::remove_temporaries();
            crate::taskfarm::kill_running();
            let _ = signal_hook::low_level::emulate_default_handler(sig);
            std::process::exit(128 + sig);
        }
    });
}

fn score(comm: &dyn Comm, a: &ScoreArgs, log: &Log) -> Result<()> {
    let t0 = Instant::now();
    let loaded = Model::load_flow(&a.model);
    let (flow, model) = agree(comm, loaded)?;
    let mut opts = a.data.options()?;
    opts.model_columns(&model.input_columns);
    opts.targets = flow.targets();
    opts.label = flow.label()?;
    let data = Dataset::open(comm, &opts)?;
    crate::model::check_data_columns(&model.input_columns, &data)?;
    let s = crate::score::score(comm, &flow, &data)?;
    log.info(format!("scored {} over {} in {:.3} s", model.flow, plural(comm.size() as u64, "rank"), t0.elapsed().as_secs_f64()));
    if comm.rank() == 0 {
        if a.json {
            outln!("{}", serde_json::to_string_pretty(&s).expect("json"))?;
        } else {
            stdout::print(&s.table())?;
        }
    }
    Ok(())
}

fn inspect(a: &InspectArgs) -> Result<()> {
    let m = Model::load(&a.model)?;
    if a.json {
        outln!("{}", String::from_utf8_lossy(&m.to_bytes()))?;
        return Ok(());
    }
    let flow = m.flow()?;
    outln!("model:     {}", a.model.display())?;
    let ranks = m.ranks.map_or("with --reproducible (the same file on any rank count)".to_string(), |r| format!("on {}", plural(r as u64, "rank")));
    outln!("written by flowmpi {} (format v{}), trained {ranks}", m.flowmpi_version, m.format_version)?;
    outln!("flow:      {}", m.flow)?;
    outln!("input:     {} columns [{}]", m.input_dim, crate::io::abbreviate_names(&m.input_columns))?;
    outln!("output:    {} columns [{}]", m.output_columns.len(), crate::io::abbreviate_names(&m.output_columns))?;
    outln!("training:  {}", plural(m.training_rows, "row"))?;
    for (i, n) in flow.nodes.iter().enumerate() {
        outln!("node {i}: {}", n.spec())?;
        for line in n.summary(a.full) {
            outln!("    {line}")?;
        }
    }
    Ok(())
}
