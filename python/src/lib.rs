//! `flowmpi._flowmpi`: the Rust half of flowmpi's Python package. It holds the process's MPI
//! context, turns Python's communicators into flowmpi's, and runs training and models with
//! the GIL released; the Python half (`flowmpi/__init__.py`) gives it its Python shape.

use flowmpi::comm::Comm;
use flowmpi::flow::{Flow, TrainOptions};
use flowmpi::jobs::{self, TrainJob};
use flowmpi::log::Log;
use flowmpi::par;
use flowmpi::{Context, DataOptions, Model, MpiComm};
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray2};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use std::path::PathBuf;
use std::sync::Mutex;

mod interrupt;

pyo3::create_exception!(_flowmpi, Error, PyException, "A flowmpi error, raised on every rank with the sentence the command line prints.");
pyo3::create_exception!(_flowmpi, ParamError, Error, "A flow, node parameter or option is invalid (`pca(n=0)`, a target column that is not there).");
pyo3::create_exception!(_flowmpi, DataError, Error, "Input rows are unreadable or malformed; `rank`, `file` and `line` say where.");
pyo3::create_exception!(_flowmpi, FitError, Error, "The rows of all ranks do not allow the computation (too few rows, rank-deficient data).");
pyo3::create_exception!(_flowmpi, ModelError, Error, "A model file cannot be read, or a model does not fit the rows given to it.");
pyo3::create_exception!(_flowmpi, OutputError, Error, "An output file cannot be written; `rank` and `file` say which.");
pyo3::create_exception!(
    _flowmpi,
    ItemError,
    Error,
    "An item of parallelize or map_reduce failed; `index` and `rank` name the lowest failing item, the message holds its traceback."
);

/// A value handed across `Python::detach`: flowmpi's communicators and flows are used by the
/// one thread that called in (detach runs its closure on that thread), so this is sound.
struct Here<T>(T);
// SAFETY: see the type's doc: the value never leaves the calling thread.
unsafe impl<T> Send for Here<T> {}
unsafe impl<T> Sync for Here<T> {}

impl<T> Here<T> {
    /// The value (a method, so that a closure captures the whole `Here`, not its field).
    fn get(&self) -> &T {
        &self.0
    }
}

/// The process's MPI context: made on first use, dropped (finalising MPI when flowmpi
/// initialised it) by `finalize`, which the package registers with `atexit`.
static CONTEXT: Mutex<Option<Here<Context>>> = Mutex::new(None);

/// A flowmpi error as `flowmpi.Error`, with what it names as attributes: `rank`, `file`,
/// `line` (bad input), `index` (a failed item); None when it names none.
fn error(e: flowmpi::Error) -> PyErr {
    use flowmpi::Error as E;
    let (rank, file, line, index) = match &e {
        E::Data { loc, .. } => (Some(loc.rank), Some(loc.path.clone()), loc.line, None),
        E::Output { rank, path, .. } => (Some(*rank), Some(path.clone()), None, None),
        E::Item { index, rank, .. } => (Some(*rank), None, None, Some(*index)),
        _ => (None, None, None, None),
    };
    let text = e.to_string();
    let err = match &e {
        E::Param(_) => ParamError::new_err(text),
        E::Data { .. } | E::Row { .. } => DataError::new_err(text),
        E::Fit(_) => FitError::new_err(text),
        E::Model(_) => ModelError::new_err(text),
        E::Output { .. } => OutputError::new_err(text),
        E::Item { .. } => ItemError::new_err(text),
        _ => Error::new_err(text),
    };
    Python::attach(|py| {
        let v = err.value(py);
        let _ = (v.setattr("rank", rank), v.setattr("file", file), v.setattr("line", line), v.setattr("index", index));
    });
    err
}

/// Run `f` with flowmpi's communicator: a duplicate of the caller's raw `MPI_Comm` handle, or
/// MPI_COMM_WORLD.
fn with_comm<T>(handle: Option<usize>, f: impl FnOnce(&dyn Comm) -> PyResult<T>) -> PyResult<T> {
    // Waited for without the GIL: a thread inside a flowmpi call holds the lock and will want
    // the GIL back when its work is done.
    let locked = Python::attach(|py| py.detach(|| CONTEXT.lock().map(Here).map_err(|_| ())));
    let mut guard = locked.map_err(|_| Error::new_err("flowmpi: the MPI context was poisoned by an earlier panic"))?.0;
    if guard.is_none() {
        if mpi::environment::is_finalized() {
            return Err(Error::new_err("MPI is already finalised in this process (flowmpi.finalize or mpi4py): flowmpi cannot use it again"));
        }
        *guard = Some(Here(Context::init()));
    }
    let ctx = &guard.as_ref().expect("made above").0;
    match handle {
        None => f(ctx.comm()),
        Some(h) => {
            // An MPI_Comm is a pointer (Open MPI) or an int (MPICH): the handle's low bytes.
            // SAFETY: the Python side passes a live communicator's handle (mpi4py's comm.handle).
            let raw: mpi::ffi::MPI_Comm = unsafe { std::mem::transmute_copy(&h) };
            let comm = unsafe { MpiComm::from_raw(raw) }.map_err(error)?;
            f(&comm)
        }
    }
}

/// This process's rank and the number of ranks in MPI_COMM_WORLD (initialising MPI, or
/// borrowing it when mpi4py already did).
#[pyfunction]
fn init() -> PyResult<(usize, usize)> {
    with_comm(None, |c| Ok((c.rank(), c.size())))
}

/// Drop flowmpi's MPI context: MPI is finalised if flowmpi initialised it. Registered with
/// `atexit`; MPI cannot be used again afterwards.
#[pyfunction]
fn finalize() {
    if let Ok(mut g) = CONTEXT.lock() {
        g.take();
    }
}

/// The rank and size of the communicator `comm` (a raw handle) or of the world.
#[pyfunction]
#[pyo3(signature = (comm=None))]
fn rank_size(comm: Option<usize>) -> PyResult<(usize, usize)> {
    with_comm(comm, |c| Ok((c.rank(), c.size())))
}

/// Wait until every rank of `comm` (a raw handle; default the world) calls it.
#[pyfunction]
#[pyo3(signature = (comm=None))]
fn barrier(py: Python<'_>, comm: Option<usize>) -> PyResult<()> {
    with_comm(comm, |c| {
        let c = Here(c);
        py.detach(|| c.get().barrier());
        Ok(())
    })
}

/// A Fortran communicator handle (mpi4py's `comm.py2f()`) as a C handle.
#[pyfunction]
fn comm_f2c(f: i64) -> PyResult<usize> {
    with_comm(None, |_| Ok(()))?;
    // SAFETY: MPI is initialised; MPI_Comm_f2c only translates the handle.
    let c = unsafe { mpi::ffi::MPI_Comm_f2c(f as _) };
    let mut out = 0usize;
    // SAFETY: copies the handle's bytes (a pointer or an int) into a usize.
    unsafe { std::ptr::copy_nonoverlapping(&c as *const _ as *const u8, &mut out as *mut usize as *mut u8, std::mem::size_of_val(&c).min(8)) };
    Ok(out)
}

/// A trained model: the model file's contents and the trained flow.
#[pyclass(unsendable, module = "flowmpi._flowmpi")]
struct RawModel {
    model: Model,
    flow: Flow,
    /// The flow with its classifier giving log-probabilities: made on the first `log_proba`.
    proba: std::cell::OnceCell<Flow>,
}

impl RawModel {
    fn new(model: Model) -> PyResult<Self> {
        let flow = model.flow().map_err(error)?;
        Ok(RawModel { model, flow, proba: std::cell::OnceCell::new() })
    }

    /// `f(flow, x)` with the GIL released.
    fn map(
        &self,
        py: Python<'_>,
        x: PyReadonlyArray2<'_, f64>,
        f: fn(&Flow, ndarray::ArrayView2<f64>) -> flowmpi::Result<ndarray::Array2<f64>>,
    ) -> PyResult<Py<PyArray2<f64>>> {
        let (flow, x) = (Here(&self.flow), Here(x.as_array()));
        let out = py.detach(move || f(flow.get(), *x.get()).map(Here)).map_err(error)?;
        Ok(out.0.into_pyarray(py).unbind())
    }
}

#[pymethods]
impl RawModel {
    /// The flow's output for rows `x` (`flowmpi execute`).
    fn execute(&self, py: Python<'_>, x: PyReadonlyArray2<'_, f64>) -> PyResult<Py<PyArray2<f64>>> {
        self.map(py, x, |f, x| f.execute(x))
    }
    /// The flow run backwards (`flowmpi execute --inverse`).
    fn inverse(&self, py: Python<'_>, y: PyReadonlyArray2<'_, f64>) -> PyResult<Py<PyArray2<f64>>> {
        self.map(py, y, |f, y| f.inverse(y))
    }
    /// The class names of a classifier at the end of the flow (gnb, mnb); None otherwise.
    #[getter]
    fn classes(&self) -> Option<Vec<String>> {
        self.flow.nodes.last().and_then(|n| n.classes()).map(<[String]>::to_vec)
    }
    /// The class log-probabilities of rows `x` (`flowmpi execute --proba`'s `logp_` columns),
    /// one column per class in [`RawModel::classes`]' order.
    fn log_proba(&self, py: Python<'_>, x: PyReadonlyArray2<'_, f64>) -> PyResult<Py<PyArray2<f64>>> {
        let Some(k) = self.classes().map(|c| c.len()) else {
            return Err(Error::new_err(format!("the flow ends in {}, which is not a classifier (mnb, gnb) and has no class probabilities", self.model.flow)));
        };
        if self.proba.get().is_none() {
            let mut flow = self.model.flow().map_err(error)?;
            if let Some(last) = flow.nodes.last_mut() {
                last.set_proba(true);
            }
            let _ = self.proba.set(flow);
        }
        let (flow, x) = (Here(self.proba.get().expect("set above")), Here(x.as_array()));
        let out = py.detach(move || flow.get().execute(*x.get()).map(|y| Here(y.slice(ndarray::s![.., y.ncols() - k..]).to_owned()))).map_err(error)?;
        Ok(out.0.into_pyarray(py).unbind())
    }
    /// The target columns the flow was trained on (regressions).
    #[getter]
    fn targets(&self) -> Vec<String> {
        self.flow.targets()
    }
    /// The label column the flow was trained on (classifiers).
    #[getter]
    fn label(&self) -> Option<String> {
        self.flow.nodes.last().and_then(|n| n.label())
    }
    /// The score of the flow's last node on this rank's rows of `table` (columns named
    /// `columns`), collective over `comm`: `flowmpi score --json`'s object, as JSON text.
    #[pyo3(signature = (table, columns, comm=None))]
    fn score(&self, py: Python<'_>, table: PyReadonlyArray2<'_, f64>, columns: Vec<String>, comm: Option<usize>) -> PyResult<String> {
        let (flow, table, input) = (Here(&self.flow), Here(table.as_array()), &self.model.input_columns);
        with_comm(comm, |c| {
            let c = Here(c);
            let s = interrupt::detach(py, || flowmpi::score::score_table(*c.get(), flow.get(), *table.get(), &columns, input))?;
            Ok(serde_json::to_string(&s).expect("a score serialises"))
        })
    }
    /// One node's figure (`flowmpi plot`; `node` None: the last that has one) as the bytes of
    /// an SVG (`png` false) or PNG file of `width` x `height` pixels.
    #[pyo3(signature = (node=None, png=false, width=1000, height=700))]
    fn plot(&self, py: Python<'_>, node: Option<usize>, png: bool, width: u32, height: u32) -> PyResult<Py<pyo3::types::PyBytes>> {
        let fig = flowmpi::plot::model_figure(&self.model, node).map_err(error)?;
        let kind = if png { flowmpi::plot::Kind::Png } else { flowmpi::plot::Kind::Svg };
        let bytes = flowmpi::plot::render(&fig, kind, (width, height)).map_err(error)?;
        Ok(pyo3::types::PyBytes::new(py, &bytes).unbind())
    }
    /// The model file's JSON text.
    fn to_json(&self) -> String {
        String::from_utf8_lossy(&self.model.to_bytes()).into_owned()
    }
    /// Write the model to `path` (collective over `comm`: its rank 0 writes, atomically).
    #[pyo3(signature = (path, comm=None))]
    fn save(&self, path: PathBuf, comm: Option<usize>) -> PyResult<()> {
        with_comm(comm, |c| self.model.save(c, &path).map_err(error))
    }
    #[getter]
    fn input_columns(&self) -> Vec<String> {
        self.model.input_columns.clone()
    }
    #[getter]
    fn output_columns(&self) -> Vec<String> {
        self.model.output_columns.clone()
    }
    #[getter]
    fn flow(&self) -> String {
        self.model.flow.clone()
    }
    #[getter]
    fn training_rows(&self) -> u64 {
        self.model.training_rows
    }
}

/// A model read from its file.
#[pyfunction]
fn load(path: PathBuf) -> PyResult<RawModel> {
    RawModel::new(Model::load(&path).map_err(error)?)
}

/// Rank 0's log lines at `verbose` (0: none, 1: the command's lines, 2: `-v`'s), printed to
/// stderr as the command line prints them (the stderr logger is installed on first use, unless
/// the process has another logger).
fn log(verbose: u8) -> Log {
    if verbose > 0 {
        flowmpi::log::StderrLogger::install();
    }
    Log { level: verbose, ..Log::default() }
}

/// Train `flow` on this rank's rows of `table` (columns named `columns`; targets and labels are
/// columns, as in the CLI), collective over `comm`.
#[pyfunction]
#[pyo3(signature = (flow, table, columns, comm=None, verbose=0, threads=0))]
fn fit(
    py: Python<'_>,
    flow: &str,
    table: PyReadonlyArray2<'_, f64>,
    columns: Vec<String>,
    comm: Option<usize>,
    verbose: u8,
    threads: usize,
) -> PyResult<RawModel> {
    let f = Here(std::cell::RefCell::new(Flow::parse(flow).map_err(error)?));
    let table = Here(table.as_array());
    let model = with_comm(comm, |c| {
        let c = Here(c);
        interrupt::detach(py, || {
            let opts = TrainOptions { log: log(verbose), threads, ..Default::default() };
            let mut flow = f.get().borrow_mut();
            let (report, names) = flow.fit_table(*c.get(), *table.get(), &columns, &opts)?;
            Ok(Here(Model::new(&flow, None, names, report.rows, c.get().size())))
        })
    })?;
    RawModel::new(model.0)
}

/// Train on shard files, as `flowmpi train` (collective over `comm`).
#[pyfunction]
#[pyo3(signature = (flow, data, columns=None, exclude=None, nan_skip=false, comm=None, save=None, update=None, checkpoint=None, resume=false, cache_data=false, cache=None, keep_partials=false, reproducible=false, verbose=0, threads=0))]
#[allow(clippy::too_many_arguments)]
fn train(
    py: Python<'_>,
    flow: Option<String>,
    data: String,
    columns: Option<String>,
    exclude: Option<String>,
    nan_skip: bool,
    comm: Option<usize>,
    save: Option<PathBuf>,
    update: Option<PyRef<'_, RawModel>>,
    checkpoint: Option<PathBuf>,
    resume: bool,
    cache_data: bool,
    cache: Option<PathBuf>,
    keep_partials: bool,
    reproducible: bool,
    verbose: u8,
    threads: usize,
) -> PyResult<RawModel> {
    let mut opts = DataOptions::new(data);
    if threads > 0 {
        opts.threads = flowmpi::cores::check_threads(threads, "threads").map_err(error)?;
    }
    opts.columns = columns;
    opts.exclude = exclude;
    if nan_skip {
        opts.nan = flowmpi::io::NanPolicy::Skip;
    }
    let job = TrainJob {
        flow,
        update: update.map(|m| m.model.clone()),
        save,
        checkpoint,
        resume,
        cache_data,
        cache: cache.map(|dir| flowmpi::cache::ShardCache { dir, verify: false }),
        keep_partials,
        reproducible,
        log: log(verbose),
    };
    let model = with_comm(comm, |c| {
        let c = Here(c);
        interrupt::detach(py, || jobs::train(*c.get(), opts, &job).map(|t| Here(t.model)))
    })?;
    RawModel::new(model.0)
}

thread_local! {
    /// The item this worker thread runs now (its scheduler context), and the sections it holds:
    /// set for the length of one Python call, so that `with ctx.ordered():` finds them.
    static ITEM: std::cell::RefCell<Option<(*const par::Ctx<'static>, Vec<par::Section<'static>>)>> = const { std::cell::RefCell::new(None) };
}

/// A worker thread's Python thread state, made on its first item and kept until the thread
/// ends: without it every item's `Python::attach` would create and destroy one (about 20 µs).
struct ThreadState(*mut pyo3::ffi::PyThreadState);

impl ThreadState {
    /// Register this thread with the interpreter once (the GIL is not held afterwards).
    fn keep() {
        KEPT.with(|k| {
            if k.borrow().is_none() {
                // SAFETY: called without the GIL on a thread the interpreter may not know;
                // Ensure registers it, SaveThread releases the GIL and keeps the state.
                let state = unsafe {
                    pyo3::ffi::PyGILState_Ensure();
                    pyo3::ffi::PyEval_SaveThread()
                };
                *k.borrow_mut() = Some(ThreadState(state));
            }
        });
    }
}

impl Drop for ThreadState {
    fn drop(&mut self) {
        // SAFETY: the state this thread saved; the interpreter is still running while maps are.
        unsafe {
            if pyo3::ffi::Py_IsInitialized() != 0 {
                pyo3::ffi::PyEval_RestoreThread(self.0);
                pyo3::ffi::PyGILState_Release(pyo3::ffi::PyGILState_STATE::PyGILState_UNLOCKED);
            }
        }
    }
}

thread_local! {
    static KEPT: std::cell::RefCell<Option<ThreadState>> = const { std::cell::RefCell::new(None) };
}

/// The text Python prints for an exception: its traceback and message.
fn traceback_text(py: Python<'_>, e: &PyErr) -> String {
    let text = py
        .import("traceback")
        .and_then(|t| t.call_method1("format_exception", (e.get_type(py), e.value(py), e.traceback(py))))
        .and_then(|lines| lines.extract::<Vec<String>>())
        .map(|lines| lines.concat());
    text.unwrap_or_else(|_| e.to_string()).trim_end().to_string()
}

/// `f(items[i])` for every item, spread over the ranks of `comm` by flowmpi's scheduler; the
/// results (pickled) in input order on every rank. An exception in any item raises on every
/// rank with the lowest failing item's index, rank and traceback.
#[pyfunction]
#[pyo3(signature = (f, items, schedule="guided", chunk=1, comm=None))]
fn parallelize(py: Python<'_>, f: Py<PyAny>, items: Py<PyAny>, schedule: &str, chunk: usize, comm: Option<usize>) -> PyResult<Vec<Py<PyAny>>> {
    let n = items.bind(py).len()?;
    let chunk = chunk.max(1);
    let schedule = match schedule {
        "static" => par::Schedule::Static,
        "dynamic" => par::Schedule::Dynamic { chunk },
        "guided" => par::Schedule::Guided { chunk },
        other => return Err(pyo3::exceptions::PyValueError::new_err(format!("schedule must be 'static', 'dynamic' or 'guided', not {other:?}"))),
    };
    let pickle = py.import("pickle")?.unbind();
    // One worker thread per rank: the items are Python calls, which one interpreter runs one
    // at a time.
    let opts = par::Options { schedule, threads: 1, ..Default::default() };
    let indices: Vec<usize> = (0..n).collect();
    let run = |ctx: &par::Ctx, &i: &usize| -> Result<Vec<u8>, String> {
        ThreadState::keep();
        Python::attach(|py| {
            // SAFETY: the pointer is cleared (and the sections dropped) before this call ends,
            // so nothing outlives the context it points at.
            let here: *const par::Ctx<'static> = (ctx as *const par::Ctx).cast();
            ITEM.with(|c| *c.borrow_mut() = Some((here, Vec::new())));
            let out = items.bind(py).get_item(i).and_then(|item| f.bind(py).call1((item,)));
            ITEM.with(|c| c.borrow_mut().take());
            let value = out.map_err(|e| traceback_text(py, &e))?;
            let bytes = pickle.bind(py).call_method1("dumps", (value,)).map_err(|e| format!("its result cannot be pickled: {e}"))?;
            bytes.extract::<Vec<u8>>().map_err(|e| e.to_string())
        })
    };
    let results = with_comm(comm, |c| {
        let c = Here(c);
        interrupt::detach(py, || par::parallelize_with(*c.get(), &indices, &opts, run))
    })?;
    let loads = pickle.bind(py).getattr("loads")?;
    results.into_iter().map(|b| loads.call1((pyo3::types::PyBytes::new(py, &b),)).map(Bound::unbind)).collect()
}

/// Enter the current item's ordered (`ordered=True`) or critical section: held until
/// `section_exit`, or until the item's call returns.
#[pyfunction]
fn section_enter(py: Python<'_>, ordered: bool) -> PyResult<()> {
    let ctx = ITEM.with(|c| c.borrow().as_ref().map(|(p, _)| Here(*p)));
    let Some(ctx) = ctx else {
        return Err(Error::new_err("ordered() and critical() are for use inside an item of flowmpi.parallelize or map_reduce"));
    };
    // Waiting for the section: let the other threads' items run meanwhile.
    let section = py.detach(|| {
        // SAFETY: the pointer is set only while its item's call runs on this thread.
        let ctx = unsafe { &**ctx.get() };
        Here(if ordered { ctx.enter_ordered() } else { ctx.enter_critical() })
    });
    ITEM.with(|c| c.borrow_mut().as_mut().map(|(_, held)| held.push(section.0)));
    Ok(())
}

/// Leave the innermost section entered by `section_enter`.
#[pyfunction]
fn section_exit() {
    let section = ITEM.with(|c| c.borrow_mut().as_mut().and_then(|(_, held)| held.pop()));
    drop(section);
}

/// This rank's slice of the global stable argsort of every rank's `keys` (collective): global
/// row indices (ranks' rows numbered in rank order), numpy's `argsort(kind="stable")` of the
/// concatenated keys when the slices are concatenated in rank order.
#[pyfunction]
#[pyo3(signature = (keys, comm=None))]
fn argsort<'py>(py: Python<'py>, keys: numpy::PyReadonlyArray1<'py, f64>, comm: Option<usize>) -> PyResult<Bound<'py, numpy::PyArray1<i64>>> {
    let keys = Here(keys.as_array().to_vec());
    let index = with_comm(comm, |c| {
        let c = Here(c);
        py.detach(|| par::argsort(*c.get(), keys.get()).map(Here)).map_err(error)
    })?;
    Ok(index.0.into_iter().map(|i| i as i64).collect::<Vec<_>>().into_pyarray(py))
}

/// The MPI library flowmpi was built against (`MPI_Get_library_version`).
#[pyfunction]
fn library_version() -> String {
    // rsmpi hands back the C buffer's terminating NUL too.
    mpi::environment::library_version().unwrap_or_default().trim_end_matches(['\0', '\n', ' ']).to_string()
}

/// The nodes and their parameters, as `flowmpi train --help` lists them.
#[pyfunction]
fn nodes_help() -> String {
    flowmpi::nodes::help().to_string()
}

#[pymodule]
fn _flowmpi(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<Error>())?;
    m.add("ParamError", py.get_type::<ParamError>())?;
    m.add("DataError", py.get_type::<DataError>())?;
    m.add("FitError", py.get_type::<FitError>())?;
    m.add("ModelError", py.get_type::<ModelError>())?;
    m.add("OutputError", py.get_type::<OutputError>())?;
    m.add("ItemError", py.get_type::<ItemError>())?;
    m.add_class::<RawModel>()?;
    m.add_function(wrap_pyfunction!(init, m)?)?;
    m.add_function(wrap_pyfunction!(finalize, m)?)?;
    m.add_function(wrap_pyfunction!(rank_size, m)?)?;
    m.add_function(wrap_pyfunction!(barrier, m)?)?;
    m.add_function(wrap_pyfunction!(comm_f2c, m)?)?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(nodes_help, m)?)?;
    m.add_function(wrap_pyfunction!(parallelize, m)?)?;
    m.add_function(wrap_pyfunction!(section_enter, m)?)?;
    m.add_function(wrap_pyfunction!(section_exit, m)?)?;
    m.add_function(wrap_pyfunction!(argsort, m)?)?;
    m.add_function(wrap_pyfunction!(library_version, m)?)?;
    Ok(())
}
