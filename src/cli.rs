//! The command line: `flowmpi train | execute | inspect | stats | score | map | sort`.
//!
//! Every MPI command ends with one agreement step, so all ranks exit together with the same
//! status; rank 0 prints the one error message.

use crate::comm::{agree, allgather_f64, Comm, Context};
use crate::error::{Error, Result};
use crate::flow::{read_flow_file, Flow};
use crate::io::{commit_all, expand_pattern, DataOptions, Dataset, Format, NanPolicy, ShardWriter};
use crate::log::Log;
use crate::model::Model;
use crate::nodes::{MomentsNode, Node};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

mod sort;

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
    Train(TrainArgs),
    /// Run a trained flow: each rank writes its own transformed shard, rows in input order.
    Execute(ExecuteArgs),
    /// Print a readable summary of a model file (no MPI needed).
    Inspect(InspectArgs),
    /// Print per-column low-order moments of the data (a table, or JSON).
    Stats(StatsArgs),
    /// Score a trained supervised or k-means flow on data over all ranks: R² and RMSE,
    /// accuracy and confusion matrix, or inertia.
    Score(ScoreArgs),
    /// A task farm: run a command once per line of a task file, spread over all ranks (and
    /// threads), e.g. `mpirun -n 8 flowmpi map --tasks subjects.txt -- ./analyse {}`.
    Map(MapArgs),
    /// Sort all ranks' rows by one column (a distributed stable sort): each rank writes one
    /// contiguous slice of the sorted rows and/or their global row indices (argsort).
    Sort(sort::SortArgs),
}

/// `flowmpi map`.
#[derive(Args, Debug)]
#[command(after_help = "Each task is one line of --tasks (blank lines and lines starting with # are skipped). In the \
command, {} is the line and {index} its 0-based index; the command runs directly (no shell: use \
`sh -c '...'` for pipes or redirections). Exit status 0 is success. At the end rank 0 prints every \
task's output in task order (or they are in --logs files) and a summary; the exit status is 1 if \
any task failed.\n\nA job killed at its time limit continues where it stopped with the same \
command plus --resume, given --journal: finished tasks are skipped, failed ones run again.")]
pub struct MapArgs {
    /// The task file: one task per line.
    #[arg(long, value_name = "FILE")]
    pub tasks: PathBuf,
    /// 'dynamic': one task at a time to whichever rank is free (uneven task times); 'guided':
    /// shrinking blocks of tasks (many short tasks); 'static': contiguous blocks per rank.
    #[arg(long, default_value = "dynamic", value_parser = ["dynamic", "guided", "static"])]
    pub schedule: String,
    /// Tasks run at once per rank (default: cores / ranks on the node, or $FLOWMPI_THREADS).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Write each task's output (stdout and stderr) to this file, with {index}, e.g.
    /// 'logs/task{index}.log'. Default: kept (up to 64 KB per task) and printed at the end.
    #[arg(long, value_name = "PATTERN")]
    pub logs: Option<String>,
    /// Record every finished task in this file (appended, one line per task, flushed).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Skip the tasks --journal records as done (after a job was killed).
    #[arg(long)]
    pub resume: bool,
    /// Kill a task that runs longer than this many seconds (it counts as failed).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Where the data is and how to parse it.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Input shards: a pattern with {rank} (or {}) and {size}, e.g. 'data/part{rank}.csv'; a glob
    /// ('data/*.npy') or a directory, whose sorted files are cut into contiguous blocks, one per
    /// rank (a rank may get several or none); or one CSV/NPY file that the ranks split among
    /// themselves (CSV by line-aligned byte ranges, NPY by rows).
    #[arg(long, value_name = "SPEC")]
    pub data: String,
    /// File format; chosen by extension by default (.npy = npy, anything else = csv).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// The CSV files have a header line (auto-detected by default: a non-numeric field).
    #[arg(long, conflicts_with = "no_header")]
    pub header: bool,
    /// The CSV files have no header line.
    #[arg(long)]
    pub no_header: bool,
    /// CSV field delimiter (one character; 'tab' or '\t' for tabs). Default ',' (tab for .tsv).
    #[arg(long, value_name = "CHAR")]
    pub delimiter: Option<String>,
    /// Feature columns by header name or 0-based index, with inclusive ranges: 'x0,x1,x5',
    /// '0-5'. Default: all columns except the flow's target and label columns (and --keep's).
    #[arg(long, value_name = "LIST")]
    pub columns: Option<String>,
    /// What to do with NaN, ±inf or empty values in the selected columns.
    #[arg(long, value_enum, default_value = "error")]
    pub nan: NanArg,
    /// Parser threads per rank (default: cores / ranks on the node, or $FLOWMPI_THREADS).
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
    fn options(&self, default_columns: Option<&str>) -> Result<DataOptions> {
        let delimiter = match self.delimiter.as_deref() {
            None => None,
            Some("tab") | Some("\\t") | Some("\t") => Some(b'\t'),
            Some(s) if s.len() == 1 && s != "\"" && s != "\n" => Some(s.as_bytes()[0]),
            Some(s) => return Err(Error::Param(format!("--delimiter must be one character, got {s:?}"))),
        };
        let mut o = DataOptions::new(&self.data);
        o.format = self.format.map(|f| match f {
            FormatArg::Csv => Format::Csv,
            FormatArg::Npy => Format::Npy,
        });
        o.header = if self.header { Some(true) } else if self.no_header { Some(false) } else { None };
        o.delimiter = delimiter;
        o.columns = self.columns.clone().or(default_columns.map(String::from));
        if self.columns.is_none() && default_columns.is_some() {
            o.columns_from = Some("the model was trained on these columns, which the data must have".into());
        }
        o.nan = match self.nan {
            NanArg::Error => NanPolicy::Error,
            NanArg::Skip => NanPolicy::Skip,
        };
        o.block_bytes = self.block_bytes.max(1024);
        o.allow_unread = self.allow_unread;
        o.threads = self.threads.unwrap_or_else(crate::launch::threads_per_rank).max(1);
        Ok(o)
    }
}

/// `flowmpi train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Data options.
    #[command(flatten)]
    pub data: DataArgs,
    /// The flow: nodes separated by '|', e.g. 'moments | covariance | pca(n=6)' or
    /// 'pca(var=0.95) | whitening'. Nodes: moments, covariance, pca(n=K | var=F, method=cov|corr),
    /// whitening(n=K | var=F), linreg(target=y, method=normal|qr, intercept=true),
    /// ridge(alpha=1 | alpha=[..], target=y), mnb(label=c, alpha=1), gnb(label=c),
    /// kmeans(k=K, init=random|++|parallel|FILE, n_init=N, max_iter=300, tol=1e-4, seed=0), quadratic,
    /// poly(degree=D), sfa(n=K, contiguous=false), sfa2(n=K), fda(n=K, label=c), svd(k=K),
    /// hist(bins=B). Layers train nodes side by side on column groups and concatenate their
    /// outputs: 'layer(pca(n=3) @ 0-9, sfa(n=2) @ [x10; x12])'; 'clone(pca(n=3), groups=4)' trains
    /// one node on 4 equal column groups (their rows stacked) and applies it to each.
    #[arg(long, required_unless_present_any = ["flow_file", "update"], conflicts_with = "flow_file")]
    pub flow: Option<String>,
    /// Read the flow from a TOML or JSON file: `flow = "..."`, or [[node]] tables with `kind`.
    #[arg(long, value_name = "FILE")]
    pub flow_file: Option<PathBuf>,
    /// Where rank 0 writes the model (JSON; written atomically, untouched on failure).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Iterative nodes (kmeans): rank 0 writes a checkpoint here after every iteration.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Continue iterative nodes from --checkpoint instead of initialising.
    #[arg(long, requires = "checkpoint")]
    pub resume: bool,
    /// Keep this rank's rows in memory after the first pass, for flows that need several
    /// passes (multi-node flows, fda, hist); by default every pass re-reads the shards.
    #[arg(long)]
    pub cache_data: bool,
    /// Keep each shard's partial statistics in DIR (like joblib.Memory): a re-run reads only
    /// the shards that changed (keyed by the nodes, the flow before them, the data options and
    /// each file's path, size, modification time and inode). Single-pass nodes only (moments,
    /// covariance, pca, whitening, ridge, your own nodes); the others read as usual.
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// With --cache: also hash each file's contents into its key, for file systems whose
    /// modification times cannot be trusted (reads every file once, but parses only changed ones).
    #[arg(long, requires = "cache")]
    pub cache_verify: bool,
    /// Store every node's partial statistics in the model, so that `--update` can later add
    /// new data without reading the old (single-pass nodes; the model grows by about one
    /// covariance matrix per node).
    #[arg(long)]
    pub keep_partials: bool,
    /// Continue a model trained with --keep-partials on new data (daal4py's online mode): the
    /// result equals training on the old and the new rows together (to round-off). The flow
    /// and columns are the old model's; --model may name the same file (it is replaced
    /// atomically).
    #[arg(long, value_name = "OLD.json")]
    pub update: Option<PathBuf>,
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

/// `flowmpi execute`.
#[derive(Args, Debug)]
pub struct ExecuteArgs {
    /// The trained model.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Data options (the model's --columns are used unless given).
    #[command(flatten)]
    pub data: DataArgs,
    /// Output per rank, with {rank} (or {}) when running on several ranks, e.g.
    /// 'out/part{rank}.csv'; .npy writes NumPy, anything else CSV with a header.
    #[arg(long, value_name = "PATTERN")]
    pub out: String,
    /// Run the flow backwards: the data holds outputs of the flow (e.g. PCA coordinates) and
    /// the inputs are reconstructed (statistics nodes pass through; PCA/whitening invert).
    #[arg(long)]
    pub inverse: bool,
    /// Classifiers: also write the log-probability of every class.
    #[arg(long)]
    pub proba: bool,
    /// Input columns to carry into the output, before the flow's columns, by header name or
    /// 0-based index, e.g. '--keep id,y' (IDs, the true target). Copied as text from CSV input
    /// (so '1.50' stays '1.50'); .npy output needs them to be numbers.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub keep: Vec<String>,
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

/// `flowmpi stats`.
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Data options.
    #[command(flatten)]
    pub data: DataArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also print per-column histograms (edges agreed over all ranks).
    #[arg(long)]
    pub hist: bool,
    /// Bins per histogram.
    #[arg(long, default_value_t = 10)]
    pub bins: usize,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    // A usage error (or --help) is the same on every rank: print it once, from rank 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if crate::launch::launcher_rank() == 0 => e.exit(),
        Err(e) => std::process::exit(e.exit_code()),
    };
    let level = if cli.quiet { 0 } else if cli.verbose { 2 } else { 1 };
    if let Command::Inspect(a) = &cli.command {
        return match inspect(a) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("flowmpi: error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let shared_memory = crate::launch::prefer_shared_memory();
    remove_temporaries_on_signals();
    crate::launch::configure_blas_threads();
    let ctx = Context::init();
    let comm = ctx.comm();
    let progress = if cli.quiet { crate::progress::Style::Off } else { crate::progress::Style::choose(&cli.progress) };
    let log = Log { level, rank: comm.rank(), progress };
    crate::log::set_global(log);
    if shared_memory {
        log.detail("one node: Open MPI pml ob1 (shared memory); set OMPI_MCA_pml to choose another");
    }
    let launched = crate::launch::check_launch(comm, &log, cli.allow_launch_mismatch);
    let res = launched.and_then(|()| match &cli.command {
        Command::Train(a) => train(comm, a, &log),
        Command::Execute(a) => execute(comm, a, &log),
        Command::Stats(a) => stats(comm, a, &log),
        Command::Score(a) => score(comm, a, &log),
        Command::Map(a) => map(comm, a, &log),
        Command::Sort(a) => sort::sort(comm, a, &log),
        Command::Inspect(_) => unreachable!(),
    });
    // Every error path above already agreed; this last agreement makes the exit collective even
    // if one did not, and leaves exactly one message, printed by rank 0.
    let res = agree(comm, res);
    let code = match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if comm.rank() == 0 {
                eprintln!("flowmpi: error: {e}");
            }
            ExitCode::FAILURE
        }
    };
    drop(ctx);
    code
}

/// On SIGTERM, SIGINT or SIGHUP (a batch system's time limit, Ctrl-C, a lost terminal) remove
/// this rank's unfinished output files, then end as the signal would have.
fn remove_temporaries_on_signals() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]) else { return };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            crate::io::remove_temporaries();
            crate::taskfarm::kill_running();
            let _ = signal_hook::low_level::emulate_default_handler(sig);
            std::process::exit(128 + sig);
        }
    });
}

/// Collective: fail early (before hours of training) when rank 0 could not write `path`.
fn check_output_dir(comm: &dyn Comm, path: &Path, what: &str) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty() && comm.rank() == 0);
    let local = match dir {
        Some(dir) if !dir.is_dir() => Err(Error::Output {
            rank: comm.rank(),
            path: path.display().to_string(),
            msg: format!("the {what} directory {} does not exist", dir.display()),
        }),
        _ => Ok(()),
    };
    agree(comm, local)
}

/// Collective: refuse outputs that would overwrite each other or the job's own inputs — two
/// ranks resolving to one file (`o/r{rank}/../x.csv`), or an output that is the model or one of
/// any rank's input files.
/// `train --update`: the old model must have kept its partials, and its flow must be one pass
/// over the input columns (statistics nodes, then one node), so the old partials still apply.
fn check_update(flow: &Flow, old: &Model, partials: &[Option<Vec<u8>>], path: &Path) -> Result<()> {
    let p = path.display();
    if flow.spec() != old.flow {
        return Err(Error::Param(format!("--update {p}: it was trained as {:?}, not {:?}; leave out --flow", old.flow, flow.spec())));
    }
    if partials.iter().any(Option::is_none) {
        return Err(Error::Param(format!("--update {p}: it was trained without --keep-partials, so the old rows would have to be read again; train on all the data")));
    }
    if let Some(n) = flow.nodes.iter().rev().skip(1).find(|n| !n.passthrough()) {
        return Err(Error::Param(format!(
            "--update: {} feeds later nodes, so new rows would change what they were trained on; train {} on all the data",
            n.spec(),
            old.flow
        )));
    }
    Ok(())
}

/// This rank's file of the output pattern `pattern` (option `flag`), which needs a {rank} when
/// there are several ranks.
fn rank_path(comm: &dyn Comm, flag: &str, pattern: &str) -> Result<PathBuf> {
    if comm.size() > 1 && !pattern.contains("{rank}") && !pattern.contains("{}") {
        return Err(Error::Param(format!(
            "{flag} {pattern:?} has no {{rank}}: with {} ranks every rank would write the same file",
            comm.size()
        )));
    }
    Ok(PathBuf::from(expand_pattern(pattern, comm.rank(), comm.size())))
}

/// Refuse an output `out` (of option `flag`) that two ranks share, that is `other` (what, path)
/// or that is an input file, also under another name (collective).
fn check_output_paths(comm: &dyn Comm, flag: &str, out: &Path, other: Option<(&str, &Path)>, data: &Dataset) -> Result<()> {
    let mine = crate::io::resolve_path(out);
    let outs: Vec<PathBuf> = comm
        .allgather_bytes(mine.as_os_str().as_encoded_bytes())
        .into_iter()
        .map(|b| PathBuf::from(String::from_utf8_lossy(&b).into_owned()))
        .collect();
    // The same file under another name (a hard link) has the same host, device and inode.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let id = |p: &Path| -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).ok().map(|m| format!("{}\0{}\0{}", host.trim(), m.dev(), m.ino()))
    };
    let out_ids: Vec<Vec<u8>> = comm.allgather_bytes(id(out).unwrap_or_default().as_bytes());
    let same_file = |p: &Path| id(p).and_then(|i| out_ids.iter().position(|o| *o == i.as_bytes()));
    let rank = comm.rank();
    let clash = |what: String| Err(Error::Param(format!("{flag}: {what}; give every rank its own file, e.g. 'out/part{{rank}}.csv'")));
    let local = (|| {
        if let Some(r) = outs[..rank].iter().position(|o| *o == mine).or_else(|| {
            let me = &out_ids[rank];
            (!me.is_empty()).then(|| out_ids[..rank].iter().position(|o| o == me)).flatten()
        }) {
            return clash(format!("ranks {r} and {rank} would both write {}", mine.display()));
        }
        if let Some((what, path)) = other {
            if let Some(r) = (mine == crate::io::resolve_path(path)).then_some(rank).or_else(|| same_file(path)) {
                return clash(format!("rank {r} would overwrite {what} {}", path.display()));
            }
        }
        for s in &data.sources {
            let input = crate::io::resolve_path(&s.path);
            if let Some(r) = outs.iter().position(|o| *o == input).or_else(|| same_file(&s.path)) {
                return clash(format!("rank {r} would overwrite the input file {} that rank {rank} reads", s.path.display()));
            }
        }
        Ok(())
    })();
    agree(comm, local)
}

fn train(comm: &dyn Comm, a: &TrainArgs, log: &Log) -> Result<()> {
    let t0 = Instant::now();
    let old = match &a.update {
        Some(p) => Some(agree(comm, Model::load(p).and_then(|m| Ok((m.partials()?, m))))?),
        None => None,
    };
    let spec = match (&a.flow, &a.flow_file, &old) {
        (Some(f), _, _) => f.clone(),
        (None, Some(p), _) => agree(comm, read_flow_file(p))?,
        (None, None, Some((_, m))) => m.flow.clone(),
        (None, None, None) => return Err(Error::Param("give --flow or --flow-file".into())),
    };
    let mut flow = Flow::parse(&spec)?;
    if let (Some((partials, m)), Some(p)) = (&old, &a.update) {
        check_update(&flow, m, partials, p)?;
    }
    for n in flow.nodes.iter_mut() {
        n.set_checkpoint(a.checkpoint.clone(), a.resume);
    }
    check_output_dir(comm, &a.model, "model")?;
    let trained_on = old.as_ref().map(|(_, m)| m.input_columns.join(","));
    let mut opts = a.data.options(trained_on.as_deref())?;
    opts.targets = flow.targets();
    opts.label = flow.label()?;
    let data = Dataset::open(comm, &opts)?;
    if let Some((_, m)) = &old {
        if data.names() != m.input_columns && data.layout.names.is_some() {
            return Err(Error::Model(format!("--update: the old model was trained on [{}] but the data gives [{}]", m.input_columns.join(", "), data.names().join(", "))));
        }
    }
    flow.resolve_columns(&data);
    log.info(format!(
        "{}; data {:?}: {} feature columns; flow {}",
        plural(comm.size() as u64, "rank"),
        opts.spec,
        data.dim(),
        flow.spec()
    ));
    let shard_cache = a.cache.as_ref().map(|dir| crate::cache::ShardCache { dir: dir.clone(), verify: a.cache_verify });
    let train_opts = crate::flow::TrainOptions {
        cache_data: a.cache_data,
        shards: shard_cache.as_ref(),
        keep_partials: a.keep_partials || old.is_some(),
        prior: old.as_ref().map(|(p, _)| p.clone()).unwrap_or_default(),
    };
    let report = flow.train_opts(comm, &data, log, &train_opts)?;
    let earlier_rows = old.as_ref().map_or(0, |(_, m)| m.training_rows);
    let columns = old.as_ref().map_or(opts.columns.clone(), |(_, m)| m.columns.clone());
    let mut model = Model::new(&flow, columns, data.names(), earlier_rows + report.rows, comm.size());
    model.set_partials(&report.partials);
    if old.is_some() {
        log.info(format!("--update: {} earlier rows + {} new", earlier_rows, report.rows));
    }
    let hashes = model.rank_hashes(comm);
    let same = hashes.iter().all(|h| h == &hashes[0]);
    for (r, h) in hashes.iter().enumerate() {
        log.detail(format!("  rank {r}: model hash {h:016x}"));
    }
    if !same {
        log.warn("the trained model differs between ranks (see -v); please report this");
    }
    model.save(comm, &a.model)?;
    log.info(format!(
        "wrote {} ({}, {} -> {} dims, {}) in {:.3} s",
        a.model.display(),
        plural(model.nodes.len() as u64, "node"),
        model.input_dim,
        model.output_columns.len(),
        plural(model.training_rows, "row"),
        t0.elapsed().as_secs_f64()
    ));
    Ok(())
}

fn execute(comm: &dyn Comm, a: &ExecuteArgs, log: &Log) -> Result<()> {
    let t0 = Instant::now();
    let loaded = Model::load(&a.model).and_then(|m| Ok((m.flow()?, m)));
    let (mut flow, model) = agree(comm, loaded)?;
    if let Some(last) = flow.nodes.last_mut() {
        if a.proba && last.classes().is_none() {
            return Err(Error::Param(format!(
                "--proba: the flow ends in {}, which is not a classifier (mnb, gnb) and has no class probabilities",
                last.spec()
            )));
        }
        last.set_proba(a.proba);
    }
    let output_columns = flow.output_names(&model.input_columns);
    let out = rank_path(comm, "--out", &a.out)?;
    let (expect, produce) = if a.inverse {
        flow.check_invertible()?;
        (&model.output_columns, &model.input_columns)
    } else {
        (&model.input_columns, &output_columns)
    };
    // Features are picked by the names the model was trained on (targets or labels in the data
    // are then simply not read).
    let trained_on = model.input_columns.join(",");
    let mut opts = a.data.options(if a.inverse { None } else { Some(&trained_on) })?;
    opts.keep = a.keep.iter().map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect();
    let data = Dataset::open(comm, &opts)?;
    // Names must match when the data has a header; without one, only the count is checked.
    let names_match = data.names() == *expect || (data.layout.names.is_none() && data.dim() == expect.len());
    if !names_match {
        return Err(Error::Model(format!(
            "the model expects columns [{}] but the data gives [{}]",
            expect.join(", "),
            data.names().join(", ")
        )));
    }
    check_output_paths(comm, "--out", &out, Some(("the model", &a.model)), &data)?;
    let labels = flow.nodes.last().filter(|_| !a.inverse).and_then(|n| n.classes().map(|c| (n.input_dim(), c.to_vec())));
    let all_names = data.layout.column_names();
    let kept: Vec<String> = data.keep.iter().map(|&j| all_names[j].clone()).collect();
    if let Some(k) = kept.iter().find(|k| produce.contains(k)) {
        return Err(Error::Param(format!("--keep {k}: the output already has a column '{k}'")));
    }
    let names: Vec<String> = kept.iter().chain(produce.iter()).cloned().collect();
    let created = ShardWriter::create(&out, &names, comm.rank()).map(|w| match labels {
        Some((col, names)) => w.with_labels(col, names),
        None => w,
    }.with_text(kept.len()));
    let mut writer = agree(comm, created)?;
    let mut bar = crate::progress::Progress::start(log, "executing", comm.size(), data.local_bytes, data.total_bytes);
    let written = data.for_each_chunk(&mut |x| {
        crate::progress::Progress::chunk(&mut bar, x);
        let y = if a.inverse { flow.inverse(x.x)? } else { flow.execute(x.x) };
        writer.write_rows_with_text(x.kept, y.as_standard_layout().as_slice().expect("standard layout")).map_err(|e| match (e, x.origin) {
            (Error::Row { row, msg }, Some(o)) => o.error(row, msg),
            (e, _) => e,
        })
    });
    drop(bar);
    let (rows, skipped) = commit_all(comm, vec![writer], written)?;
    let all = allgather_f64(comm, rows as f64);
    let total: f64 = all.iter().sum();
    let skipped = {
        let mut s = [skipped as f64];
        comm.allreduce_sum(&mut s);
        s[0]
    };
    log.info(format!(
        "wrote {} rows x {} columns to {} in {:.3} s{}",
        total,
        names.len(),
        a.out,
        t0.elapsed().as_secs_f64(),
        if skipped > 0.0 { format!(" ({skipped} rows skipped for NaN/inf)") } else { String::new() }
    ));
    for (r, n) in all.iter().enumerate() {
        log.detail(format!("  rank {r}: {n} rows -> {}", expand_pattern(&a.out, r, comm.size())));
    }
    Ok(())
}

fn score(comm: &dyn Comm, a: &ScoreArgs, log: &Log) -> Result<()> {
    let t0 = Instant::now();
    let loaded = Model::load(&a.model).and_then(|m| Ok((m.flow()?, m)));
    let (flow, model) = agree(comm, loaded)?;
    let trained_on = model.input_columns.join(",");
    let mut opts = a.data.options(Some(&trained_on))?;
    opts.targets = flow.targets();
    opts.label = flow.label()?;
    let data = Dataset::open(comm, &opts)?;
    let s = crate::score::score(comm, &flow, &data)?;
    log.info(format!("scored {} over {} rank(s) in {:.3} s", model.flow, comm.size(), t0.elapsed().as_secs_f64()));
    if comm.rank() == 0 {
        if a.json {
            println!("{}", serde_json::to_string_pretty(&s).expect("json"));
        } else {
            print!("{}", s.table());
        }
    }
    Ok(())
}

fn stats(comm: &dyn Comm, a: &StatsArgs, log: &Log) -> Result<()> {
    let t0 = Instant::now();
    let opts = a.data.options(None)?;
    let data = Dataset::open(comm, &opts)?;
    let spec = if a.hist { format!("moments | hist(bins={})", a.bins) } else { "moments".to_string() };
    let mut flow = Flow::parse(&spec)?;
    let report = flow.train(comm, &data, &Log { level: 0, ..*log })?;
    let node = serde_json::from_value::<MomentsNode>(flow.nodes[0].to_json()).map_err(|e| Error::Fit(e.to_string()))?;
    let m = node.moments.as_ref().ok_or_else(|| Error::Fit("no moments were computed".into()))?;
    let dropped = if report.skipped > 0 { format!(" ({} rows with NaN/inf/missing values skipped)", report.skipped) } else { String::new() };
    log.info(format!("{} rows over {} rank(s) in {:.3} s{dropped}", m.count, comm.size(), t0.elapsed().as_secs_f64()));
    if comm.rank() == 0 {
        if a.json {
            let mut v = node.to_json();
            v["skipped"] = report.skipped.into();
            if a.hist {
                v["hist"] = flow.nodes[1].to_json();
            }
            println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        } else {
            print!("{}", moments_table(&node.columns, m, report.skipped));
            if a.hist {
                println!("\nhistograms ({} bins):", a.bins);
                for line in flow.nodes[1].summary() {
                    println!("  {line}");
                }
            }
        }
    }
    Ok(())
}

/// A human table: one row per column, one column per statistic.
fn moments_table(names: &[String], m: &crate::nodes::moments::Moments, skipped: u64) -> String {
    let stats = m.table();
    let heads: Vec<&str> = ["column"].into_iter().chain(stats.iter().map(|(n, _)| *n)).collect();
    let mut rows: Vec<Vec<String>> = vec![heads.iter().map(|s| s.to_string()).collect()];
    for (j, name) in names.iter().enumerate() {
        let mut r = vec![name.clone()];
        r.extend(stats.iter().map(|(_, v)| format!("{:.6e}", v[j])));
        rows.push(r);
    }
    let widths: Vec<usize> = (0..heads.len()).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let mut out = format!("rows: {}\n", m.count);
    if skipped > 0 {
        out.push_str(&format!("skipped: {skipped} rows with NaN/inf/missing values (--nan skip)\n"));
    }
    for r in rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(s, w)| format!("{s:>w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn inspect(a: &InspectArgs) -> Result<()> {
    let m = Model::load(&a.model)?;
    if a.json {
        println!("{}", String::from_utf8_lossy(&m.to_bytes()));
        return Ok(());
    }
    let flow = m.flow()?;
    crate::nodes::moments::FULL.store(a.full, std::sync::atomic::Ordering::Relaxed);
    println!("model:     {}", a.model.display());
    println!("written by flowmpi {} (format v{}), trained on {}", m.flowmpi_version, m.format_version, plural(m.ranks as u64, "rank"));
    println!("flow:      {}", m.flow);
    println!("input:     {} columns [{}]", m.input_dim, abbreviate(&m.input_columns));
    println!("output:    {} columns [{}]", m.output_columns.len(), abbreviate(&m.output_columns));
    println!("training:  {}", plural(m.training_rows, "row"));
    for (i, n) in flow.nodes.iter().enumerate() {
        println!("node {i}: {}", n.spec());
        for line in n.summary() {
            println!("    {line}");
        }
    }
    Ok(())
}

fn abbreviate(names: &[String]) -> String {
    if names.len() <= 8 {
        names.join(", ")
    } else {
        format!("{}, ... , {}", names[..4].join(", "), names[names.len() - 2..].join(", "))
    }
}

/// "1 row", "2 rows".
fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `flowmpi map`: the task farm.
fn map(comm: &dyn Comm, a: &MapArgs, log: &Log) -> Result<()> {
    use crate::taskfarm::{read_tasks, Farm};
    use std::io::Write;
    let t0 = Instant::now();
    // Rank 0 reads the task file; every rank gets the same list.
    let mut bytes = match comm.rank() {
        0 => serde_json::to_vec(&read_tasks(&a.tasks).map_err(|e| e.to_string())).expect("tasks encode"),
        _ => Vec::new(),
    };
    comm.bcast_bytes(0, &mut bytes);
    let read: std::result::Result<Vec<String>, String> = serde_json::from_slice(&bytes).expect("tasks decode");
    let tasks = read.map_err(Error::Param)?;
    if let Some(p) = a.logs.as_deref().filter(|p| !p.contains("{index}") && tasks.len() > 1) {
        return Err(Error::Param(format!("--logs {p:?} has no {{index}}: every task would write the same file")));
    }
    if !(a.timeout.is_none_or(|t| t > 0.0)) {
        return Err(Error::Param("--timeout must be > 0 seconds".into()));
    }
    let farm = Farm { command: a.command.clone(), logs: a.logs.clone(), journal: a.journal.clone(), resume: a.resume, timeout: a.timeout };
    let schedule = match a.schedule.as_str() {
        "static" => crate::par::Schedule::Static,
        "guided" => crate::par::Schedule::Guided { chunk: 1 },
        _ => crate::par::Schedule::Dynamic { chunk: 1 },
    };
    let opts = crate::par::Options { schedule, threads: a.threads.unwrap_or(0), serial: None };
    log.info(format!("map: {} on {} rank(s): {}", plural(tasks.len() as u64, "task"), comm.size(), a.command.join(" ")));
    let done = crate::taskfarm::run(comm, &farm, &tasks, &opts)?;
    if comm.rank() != 0 {
        return finish_map(&done, comm.size());
    }
    let mut out = std::io::stdout().lock();
    for (i, d) in done.iter().enumerate() {
        if let Some(text) = &d.output {
            let _ = writeln!(out, "== task {i} (rank {}, {}, {:.2} s): {}", d.rank, d.outcome, d.seconds, tasks[i]);
            let _ = out.write_all(text.as_bytes());
        }
    }
    let _ = out.flush();
    let failed: Vec<usize> = (0..done.len()).filter(|&i| !done[i].outcome.ok()).collect();
    let skipped = done.iter().filter(|d| d.outcome == crate::taskfarm::Outcome::Skipped).count();
    log.info(format!(
        "map: {} done ({} from the journal), {} failed, in {:.3} s",
        done.len() - failed.len(),
        skipped,
        failed.len(),
        t0.elapsed().as_secs_f64()
    ));
    for &i in &failed {
        log.warn(format!("task {i} {} after {:.2} s: {}", done[i].outcome, done[i].seconds,
            crate::taskfarm::substitute(&a.command, i, &tasks[i]).join(" ")));
    }
    log.info("  rank  tasks  busy s");
    for r in 0..comm.size() {
        let mine: Vec<&crate::taskfarm::Done> = done.iter().filter(|d| d.rank == r && d.outcome != crate::taskfarm::Outcome::Skipped).collect();
        log.info(format!("  {r:>4}  {:>5}  {:>6.2}", mine.len(), mine.iter().map(|d| d.seconds).sum::<f64>() + 0.0));
    }
    finish_map(&done, comm.size())
}

/// The exit of a task farm: an error when any task failed (the same on every rank).
fn finish_map(done: &[crate::taskfarm::Done], _ranks: usize) -> Result<()> {
    let failed = done.iter().filter(|d| !d.outcome.ok()).count();
    if failed > 0 {
        return Err(Error::Failed(format!("{failed} of {} failed (listed above)", plural(done.len() as u64, "task"))));
    }
    Ok(())
}
