"""flowmpi from Python: MPI training of MDP-style flows over sharded data, and the models.

Every rank runs the same script, daal4py's SPMD style::

    import flowmpi
    with flowmpi.Context() as ctx:                       # daalinit(); borrows MPI from mpi4py
        model = flowmpi.train("pca(n=3) | sfa2(n=10)", data="shards/part*.csv")
        model = flowmpi.fit("pca(n=3)", X_local, columns=names)          # this rank's rows
        model = flowmpi.fit("linreg(target=[y0,y1])", XY_local, columns=names + ["y0", "y1"])
        Y = model.transform(X)                           # = flowmpi execute, bit for bit
        model.nodes[-1].components                       # numpy arrays, named as in the file

The model is the same on every rank; a rank may have 0 rows. ``comm=`` takes any mpi4py
communicator (flowmpi works on a duplicate of it); without one, MPI_COMM_WORLD. Without
``mpirun`` the script is one rank. Errors are :class:`flowmpi.Error`, raised on every rank with
the sentence the command line prints, as one of its kinds: :class:`ParamError` (a flow or
option), :class:`DataError` (input rows; ``.rank``, ``.file``, ``.line``), :class:`FitError`
(the rows do not allow it), :class:`ModelError`, :class:`OutputError` and :class:`ItemError`
(an item of :func:`parallelize`; ``.index``, ``.rank``). The GIL is released while flowmpi computes and
communicates; call flowmpi from the main thread (MPI runs at level Funneled).

Ctrl-C during a call (fit, train, score, parallelize) raises KeyboardInterrupt on every rank,
even one the signal did not reach: training ends at its next chunk of rows or k-means step, a
map hands out no more items (those under way finish). Under ``mpirun``, Ctrl-C reaches mpirun,
which ends the whole job.
"""

from __future__ import annotations

import atexit
import json
import os
from typing import Optional, Sequence

import numpy as np

from . import _flowmpi
from ._flowmpi import DataError, Error, FitError, ItemError, ModelError, OutputError, ParamError

__all__ = ["Context", "DataError", "Error", "FitError", "Figure", "ItemError", "ModelError", "OutputError", "ParamError", "Model", "Node", "argsort", "critical", "fit", "load", "map_reduce", "ordered", "parallelize", "train"]

_registered = False


def _vendor(version: str) -> str:
    """The MPI family a library version string names (their ABIs differ)."""
    v = version.lower()
    for name in ("open mpi", "mpich", "intel(r) mpi", "mvapich", "microsoft mpi"):
        if name in v:
            return name
    return v.split(",")[0].strip()


def _check_mpi4py() -> None:
    """mpi4py loaded against another MPI than flowmpi's would crash or give N one-rank worlds:
    refuse it clearly instead."""
    import sys

    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is None:
        return
    theirs = mpi.Get_library_version()
    ours = _flowmpi.library_version()
    if _vendor(theirs) != _vendor(ours):
        raise Error(f"mpi4py uses another MPI library than flowmpi: mpi4py has \"{theirs.splitlines()[0].strip()}\", flowmpi was "
                    f"built against \"{ours.splitlines()[0].strip()}\"; rebuild one against the other's "
                    "(pip install --no-binary mpi4py mpi4py)")


def _start() -> tuple:
    """Initialise MPI (or borrow it) once; finalise at interpreter exit."""
    global _registered
    rank_size = _flowmpi.init()
    _check_mpi4py()
    if not _registered:
        atexit.register(_flowmpi.finalize)
        _registered = True
    return rank_size


def _handle(comm) -> Optional[int]:
    """The C handle of an mpi4py communicator (None: the world)."""
    if comm is None:
        return None
    if isinstance(comm, int):
        return comm
    _start()
    handle = getattr(comm, "handle", None)  # mpi4py >= 4
    if handle is not None:
        return int(handle)
    if hasattr(comm, "py2f"):
        return _flowmpi.comm_f2c(comm.py2f())
    raise TypeError(f"comm must be an mpi4py communicator, not {type(comm).__name__}")


class Context:
    """The init/fini block (daal4py's ``daalinit()`` / ``daalfini()``).

    Entering it initialises MPI, or borrows it when mpi4py (or the program) already did.
    MPI is finalised once, at interpreter exit, and only if flowmpi initialised it, so
    several ``with flowmpi.Context()`` blocks may follow each other. ``rank`` and ``size`` are
    those of MPI_COMM_WORLD.
    """

    def __init__(self):
        self.rank, self.size = _start()

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, *exc) -> bool:
        return False

    def barrier(self, comm=None) -> None:
        """Wait until every rank of ``comm`` (default the world) arrives here."""
        _flowmpi.barrier(_handle(comm))

    def __repr__(self) -> str:
        return f"flowmpi.Context(rank={self.rank}, size={self.size})"


def _rows(X) -> np.ndarray:
    """Rows as float64, 2-D; no copy when they already are (any memory order)."""
    a = np.asarray(X, dtype=np.float64)
    if a.ndim == 1:
        a = a.reshape(-1, 1) if a.size else a.reshape(0, 0)
    if a.ndim != 2:
        raise ValueError(f"rows must be a 2-D array, got {a.ndim} dimensions")
    return a


class Node:
    """One trained node of a model: its kind, parameters and every array of the model file
    (``components``, ``explained_variance_ratio``, ``coefficients``, ``centroids``, ``delta``,
    ...; the names of ``flowmpi inspect --json``) as numpy arrays."""

    def __init__(self, fields: dict):
        self._fields = fields

    @property
    def kind(self) -> str:
        return self._fields.get("kind", "")

    @property
    def params(self) -> dict:
        return dict(self._fields.get("params", {}))

    @property
    def columns(self) -> list:
        return list(self._fields.get("columns", []))

    def keys(self) -> list:
        """The names of the node's fields."""
        return list(self._fields)

    def __getattr__(self, name: str):
        fields = self.__dict__.get("_fields", {})
        if name not in fields:
            raise AttributeError(f"{self.kind} node has no field {name!r}; it has {', '.join(fields)}")
        return _value(fields[name])

    def __dir__(self):
        return list(super().__dir__()) + list(self._fields)

    def __repr__(self) -> str:
        return f"<flowmpi.Node {self.kind or 'fields'}: {', '.join(k for k in self._fields if k not in ('kind', 'params', 'columns'))}>"


def _value(v):
    """Numeric lists as numpy arrays, objects as fields (``node.moments.mean``); the rest as
    they are."""
    if isinstance(v, dict):
        return Node(v)
    if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
        return [Node(x) for x in v]
    if isinstance(v, list) and v and all(isinstance(x, (int, float)) for x in v):
        return np.asarray(v, dtype=np.float64)
    if isinstance(v, list) and v and all(isinstance(r, list) and all(isinstance(x, (int, float)) for x in r) for r in v):
        widths = {len(r) for r in v}
        if len(widths) == 1:
            return np.asarray(v, dtype=np.float64)
    return v


class Model:
    """A trained flow: the same on every rank. ``transform``/``predict`` give ``flowmpi
    execute``'s columns for rows of the input columns, bit for bit."""

    def __init__(self, raw: "_flowmpi.RawModel"):
        self._raw = raw
        self._nodes = None

    def transform(self, X) -> np.ndarray:
        """The flow's output for rows ``X`` of the input columns (``flowmpi execute``)."""
        return self._raw.execute(_rows(X))

    def predict(self, X) -> np.ndarray:
        """The predictions for rows ``X`` of the feature columns: the columns ``flowmpi
        execute`` writes (a classifier's class index, a regression's targets, k-means' cluster
        and distance)."""
        return self._raw.execute(_rows(X))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities of rows ``X`` (a flow ending in a classifier: gnb, mnb), one
        column per class of :attr:`classes`; ``exp`` of ``execute --proba``'s columns."""
        return np.exp(self._raw.log_proba(_rows(X)))

    def predict_log_proba(self, X) -> np.ndarray:
        """Class log-probabilities of rows ``X`` (``flowmpi execute --proba``'s columns)."""
        return self._raw.log_proba(_rows(X))

    @property
    def classes(self):
        """A classifier's class names (the label column's values as text), else None."""
        return self._raw.classes

    def score(self, X, y=None, comm=None) -> dict:
        """The quality of the flow's last node on all ranks' rows (collective), as ``flowmpi
        score --json``: ``r2`` and ``rmse`` per target (regression), ``accuracy``,
        ``confusion`` and ``per_class`` (classification), ``inertia`` (k-means),
        ``explained_variance`` and ``rmse`` of the reconstruction (pca, whitening).
        ``X``: rows of the input columns; ``y``: the true targets or labels (needed by
        regressions and classifiers). A rank may pass 0 rows."""
        X = _rows(X)
        columns = list(self.input_columns)
        if y is not None:
            names = self._raw.targets or ([self._raw.label] if self._raw.label else [])
            if not names:
                raise ValueError(f"{self.flow} is trained on no targets or labels: leave out y")
            y = np.asarray(y, dtype=np.float64).reshape(len(X), len(names))
            X = np.hstack([X, y])
            columns += names
        return json.loads(self._raw.score(X, columns, _handle(comm)))

    def inverse(self, Y) -> np.ndarray:
        """The flow run backwards: inputs reconstructed from outputs (``execute --inverse``)."""
        return self._raw.inverse(_rows(Y))

    def save(self, path, comm=None) -> None:
        """Write the model file (collective over ``comm``; its rank 0 writes, atomically)."""
        self._raw.save(str(path), _handle(comm))

    def plot(self, path=None, node: Optional[int] = None, size=(1000, 700)) -> "Figure":
        """One node's figure, as ``flowmpi plot`` draws it (``node``: 0-based, as
        ``flowmpi inspect`` numbers them; default the last node that has a figure).

        With ``path`` (``.svg`` or ``.png``) the file is written too. The returned
        :class:`Figure` shows itself in a Jupyter notebook (SVG) and has ``.svg`` / ``.png()``.
        Local: no communication, so any rank may call it."""
        fig = Figure(self, node, size)
        if path is not None:
            fig.save(path)
        return fig

    def to_json(self) -> str:
        """The model file's text."""
        return self._raw.to_json()

    @property
    def flow(self) -> str:
        """The flow, every parameter named."""
        return self._raw.flow

    @property
    def input_columns(self) -> list:
        return self._raw.input_columns

    @property
    def output_columns(self) -> list:
        return self._raw.output_columns

    @property
    def training_rows(self) -> int:
        """Rows trained on, over all ranks."""
        return self._raw.training_rows

    @property
    def nodes(self) -> list:
        """The trained nodes (:class:`Node`), in flow order."""
        if self._nodes is None:
            self._nodes = [Node(n) for n in json.loads(self.to_json())["nodes"]]
        return self._nodes

    def __repr__(self) -> str:
        return f"<flowmpi.Model {self.flow}: {len(self.input_columns)} -> {len(self.output_columns)} columns, {self.training_rows} rows>"


class Figure:
    """A model node's figure: ``.svg`` (text), ``.png()`` (bytes), ``.save(path)``; a notebook
    shows it."""

    def __init__(self, model: "Model", node: Optional[int], size):
        self._model, self._node, self._size = model, node, (int(size[0]), int(size[1]))
        self.svg: str = model._raw.plot(node, False, *self._size).decode()

    def png(self) -> bytes:
        """The figure as PNG bytes (drawn with the built-in font)."""
        return self._model._raw.plot(self._node, True, *self._size)

    def save(self, path) -> None:
        """Write the figure as ``.svg`` or ``.png`` (by the name's extension)."""
        path = str(path)
        if path.lower().endswith(".svg"):
            data = self.svg.encode()
        elif path.lower().endswith(".png"):
            data = self.png()
        else:
            raise ParamError(f"{path}: a plot is written as .svg or .png (by its name)")
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)

    def _repr_svg_(self) -> str:
        return self.svg

    def __repr__(self) -> str:
        return f"<flowmpi.Figure {self._size[0]}x{self._size[1]}>"


def load(path) -> Model:
    """A model from its file (written by ``flowmpi train`` or :meth:`Model.save`)."""
    return Model(_flowmpi.load(str(path)))


def _threads(threads: Optional[int]) -> int:
    """A ``threads=`` argument for the extension: 0 for the default layout."""
    if threads is None:
        return 0
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a count of 1 or more, not {threads!r}")
    return threads


def fit(flow: str, X, columns: Optional[Sequence[str]] = None, comm=None, verbose: int = 0,
        threads: Optional[int] = None) -> Model:
    """Train ``flow`` on this rank's rows ``X`` (collective: every rank calls it).

    ``columns`` names the columns of ``X`` (default ``x0, x1, ...``), the same on every rank.
    Supervised nodes take their targets and label from the columns they name, as the command
    line does (``linreg(target=y)``, ``gnb(label=c)``); the other columns are the features. A
    rank may pass 0 rows. ``comm``: an mpi4py communicator (default MPI_COMM_WORLD).
    ``verbose``: 1 prints rank 0's log lines to stderr (through Python's logging when a
    handler is set up), 2 more. ``threads``: threads of this rank that work on its rows
    (default: ``FLOWMPI_THREADS``, else this rank's cores divided among the ranks on its node);
    the model is the same bits for any count.
    """
    _start()
    a = _rows(X)
    names = [f"x{j}" for j in range(a.shape[1])] if columns is None else [str(c) for c in columns]
    return Model(_flowmpi.fit(flow, a, names, _handle(comm), verbose, _threads(threads)))


def train(flow: Optional[str] = None, data: str = "", *, columns: Optional[str] = None, exclude: Optional[str] = None,
          nan: str = "error", comm=None, save=None, update: Optional[Model] = None, checkpoint=None, resume: bool = False,
          cache_data: bool = False, cache=None, keep_partials: bool = False, reproducible: bool = False,
          verbose: int = 0, threads: Optional[int] = None) -> Model:
    """Train ``flow`` on shard files, as ``flowmpi train`` (collective).

    ``data`` is the command line's ``--data``: a glob (``"shards/part*.csv"``), a directory, or
    a pattern with ``{rank}``; CSV (also ``.csv.gz``, ``.csv.zst``), ``.npy``, Parquet, or HDF5
    with the dataset after a colon (``"runs/*.h5:/sim/fields"``; a file's only dataset without
    one). ``columns``/``exclude`` pick feature columns (names, 0-based indices or ranges,
    comma-separated); ``nan="skip"`` drops rows with missing
    values. ``save``: write the model file too. ``update``: continue a model trained with
    ``keep_partials=True`` on new rows. ``checkpoint``/``resume``: k-means checkpoints.
    ``cache``: a directory of per-shard partial statistics. ``reproducible``: the same model
    bits for any number of ranks. ``threads``: as :func:`fit`'s.
    """
    _start()
    if nan not in ("error", "skip"):
        raise ValueError(f"nan must be 'error' or 'skip', not {nan!r}")
    raw = _flowmpi.train(
        flow, str(data), columns, exclude, nan == "skip", _handle(comm),
        None if save is None else str(save), None if update is None else update._raw,
        None if checkpoint is None else str(checkpoint), resume, cache_data,
        None if cache is None else str(cache), keep_partials, reproducible, verbose, _threads(threads),
    )
    return Model(raw)


fit.__doc__ += "\n" + _flowmpi.nodes_help()
train.__doc__ += "\n" + _flowmpi.nodes_help()


# The parallel idioms (Pool.map, Parallelize, sharedmem.MapReduce), over all ranks.

def parallelize(f, items, schedule: str = "guided", chunk: int = 1, comm=None) -> list:
    """``[f(x) for x in items]`` in input order, on every rank, the items spread over all ranks
    (``multiprocessing.Pool.map``, ``Parallelize(data, f)``). Collective: every rank passes the
    same items, as every rank runs the same script, so ``f`` may be a lambda; only the results
    travel (pickled). ``schedule``: ``"static"`` (contiguous blocks per rank), ``"dynamic"``
    (chunks of ``chunk`` items handed out as ranks become free) or ``"guided"`` (shrinking
    chunks; the default). An exception in any item raises :class:`flowmpi.ItemError` on every rank
    naming the lowest failing item (``.index``, ``.rank``) with its traceback. With
    ``FLOWMPI_SERIAL=1`` every rank runs every item in order (sharedmem's debug mode).
    """
    _start()
    return _flowmpi.parallelize(f, list(items), schedule, chunk, _handle(comm))


def map_reduce(f, reduce, items, schedule: str = "guided", chunk: int = 1, comm=None):
    """``f`` on every item in parallel, then the results folded with ``reduce`` in item order
    (``reduce(reduce(r0, r1), r2)...``), the same on every rank; None for no items."""
    results = parallelize(f, items, schedule, chunk, comm)
    if not results:
        return None
    out = results[0]
    for r in results[1:]:
        out = reduce(out, r)
    return out


class _Section:
    def __init__(self, ordered: bool):
        self._ordered = ordered

    def __enter__(self):
        _flowmpi.section_enter(self._ordered)
        return self

    def __exit__(self, *exc) -> bool:
        _flowmpi.section_exit()
        return False


def ordered() -> _Section:
    """Inside an item of :func:`parallelize`: ``with flowmpi.ordered():`` runs its block after
    the ordered blocks of every earlier item, over all ranks (appending to one file in item
    order, say). At most once per item."""
    return _Section(True)


def critical() -> _Section:
    """Inside an item of :func:`parallelize`: ``with flowmpi.critical():`` runs its block while
    no other item of the whole job (any rank) runs a critical block."""
    return _Section(False)


Context.ordered = staticmethod(ordered)
Context.critical = staticmethod(critical)


def argsort(keys_local, comm=None) -> np.ndarray:
    """The global stable argsort of every rank's ``keys_local`` (collective): this rank's slice
    of the sorted order, as global indices (rows numbered rank by rank). Concatenated in rank
    order, the slices are ``numpy.argsort(all_keys, kind="stable")``."""
    _start()
    return _flowmpi.argsort(np.ascontiguousarray(keys_local, dtype=np.float64).ravel(), _handle(comm))
