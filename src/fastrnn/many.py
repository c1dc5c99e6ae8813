"""Train many small models at once: a thread pool on one machine, or a Dask cluster.

:func:`fit_many` trains one model per dataset and/or per configuration and
returns, in input order, each model's final weights, history and loss.  The
models are independent, so they run in parallel: on a thread pool (fastrnn's
compiled training releases the GIL) or, given a ``dask.distributed.Client``,
in chunks of many models per Dask task.

Reproducibility
---------------
Model ``i`` is built and trained under its own seed ``seeds[i]``, in a
thread-local random scope (:func:`fastrnn.initializers._seed_scope`): its
initial weights and ``fit``'s shuffling come from a generator seeded with
``seeds[i]`` and nothing else, so its result is bitwise what this lone run
gives::

    fastrnn.set_random_seed(seeds[i])
    model = build_fn(**configs[i])
    model.fit(x_i, y_i, epochs=epochs, batch_size=batch_size, verbose=0)

whatever ``n_jobs``, the chunking, the scheduling, or a Dask worker lost and
its tasks rerun elsewhere -- and whether it was built or trained as a copy
of another model of its configuration (see :class:`_Copies`: a check that
the copy is bitwise the built model precedes any use).  A ``build_fn`` that draws random numbers of its
own must draw them from fastrnn (layer ``seed`` arguments, or nothing);
Python's :mod:`random` and NumPy's legacy global state are shared by all
threads.
"""
import copy
import math
import os
import threading
import uuid
from collections.abc import Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np

from . import _engine, initializers

__all__ = ["fit_many", "FitResult"]

# build_fn is user code and building touches process-wide state (automatic
# layer names); building is cheap next to training, so builds take turns.
# Re-entrant: a build_fn may build through something that takes it too.
_BUILD_LOCK = threading.RLock()


@dataclass
class FitResult:
    """What :func:`fit_many` returns for one model.

    Attributes
    ----------
    index : int
        The model's position in the input (results come back in this order).
    seed : int
        The seed it was built and trained under; ``fastrnn.set_random_seed(seed)``
        then the same build and ``fit`` reproduce it alone, bitwise.
    config : dict
        The keyword arguments ``build_fn`` was called with.
    weights : list of ndarray
        The trained weights, in ``get_weights()`` order (``model.set_weights(weights)``
        on a model from ``build_fn(**config)`` restores it).
    history : dict of str to list of float
        ``History.history``: ``"loss"`` (and ``"val_loss"``) per epoch.
    loss : float
        The last epoch's training loss (NaN if no epoch ran).
    val_loss : float or None
        The last epoch's validation loss, when there was validation data.
    model : fastrnn.Sequential or None
        The trained model itself with ``return_models=True`` (on a Dask
        cluster: rebuilt here from ``weights``, with a fresh optimizer state).
    error : BaseException or None
        With ``errors="return"``, the exception that stopped this model (its
        ``weights`` are then those it had when it stopped, ``history`` is empty).
    """

    index: int
    seed: int
    config: dict
    weights: list
    history: dict
    loss: float
    val_loss: object = None
    model: object = field(default=None, repr=False)
    error: object = None


# -- argument checking -----------------------------------------------------------
def _is_array(value):
    return hasattr(value, "ndim") and hasattr(value, "shape")


def _is_single_pair(value):
    """True for ``(x, y)`` of arrays (one dataset), False for a sequence of datasets."""
    return (isinstance(value, (tuple, list)) and len(value) == 2
            and _is_array(value[0]) and _is_array(value[1]))


def _pairs(value, argument):
    """A list of ``(x, y)`` pairs from one pair of arrays or a sequence of pairs."""
    if _is_single_pair(value):
        return [tuple(value)]
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__len__"):
        raise TypeError(f"{argument} must be a pair (x, y) of arrays or a list of such pairs, "
                        f"got {type(value).__name__}")
    pairs = list(value)
    if not pairs:
        raise ValueError(f"{argument} is empty")
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"{argument}[{i}] must be a pair (x, y), got "
                             f"{type(pair).__name__}"
                             + (f" of length {len(pair)}" if hasattr(pair, '__len__') else ""))
    return [tuple(p) for p in pairs]


def _configs(configs):
    if configs is None:
        return [{}]
    if isinstance(configs, Mapping):
        raise TypeError("configs must be a list of dicts (one per model), got a single dict; "
                        "wrap it in a list")
    if isinstance(configs, (str, bytes)) or not hasattr(configs, "__len__"):
        raise TypeError(f"configs must be a list of dicts, got {type(configs).__name__}")
    out = []
    for i, c in enumerate(configs):
        if not isinstance(c, Mapping):
            raise TypeError(f"configs[{i}] must be a dict of build_fn keyword arguments, "
                            f"got {type(c).__name__}")
        if not all(isinstance(k, str) for k in c):
            raise TypeError(f"configs[{i}] must have str keys (build_fn keyword arguments)")
        out.append(dict(c))
    if not out:
        raise ValueError("configs is empty")
    return out


def _seed_value(seed, argument):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{argument} must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"{argument} must be >= 0, got {seed}")
    return int(seed)


def _seeds(seeds):
    if seeds is None:
        return None
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        return [_seed_value(seeds, "seeds")]
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise TypeError(f"seeds must be an int or a list of ints, got {type(seeds).__name__}")
    out = [_seed_value(s, f"seeds[{i}]") for i, s in enumerate(seeds)]
    if not out:
        raise ValueError("seeds is empty")
    return out


def _broadcast(lists):
    """The number of models: every list has length 1 or the same n."""
    lengths = {name: len(v) for name, v in lists.items() if v is not None}
    n = max(lengths.values())
    bad = {name: k for name, k in lengths.items() if k not in (1, n)}
    if bad:
        raise ValueError("datasets, configs, seeds and validation_data must each give one "
                         "entry for every model or a single entry shared by all; got lengths "
                         + ", ".join(f"{name}={k}" for name, k in lengths.items()))
    return n


def _n_threads(n_jobs):
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)):
        raise TypeError(f"n_jobs must be an int, got {type(n_jobs).__name__}")
    if n_jobs == 0:
        raise ValueError("n_jobs must be a positive int or negative (-1: all cores), got 0")
    if n_jobs > 0:
        return int(n_jobs)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:      # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores + 1 + int(n_jobs))     # -1: all, -2: all but one, ...


def _optional_positive_int(value, argument, allow_zero=False):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{argument} must be an int, got {type(value).__name__}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{argument} must be {'>= 0' if allow_zero else '>= 1'}, got {value}")
    return int(value)


def _callbacks_factory(callbacks):
    """A function giving each model its own callbacks (callbacks hold per-fit state)."""
    if callbacks is None:
        return None
    if callable(callbacks):
        return callbacks
    if isinstance(callbacks, (list, tuple)):
        template = list(callbacks)
        return lambda: copy.deepcopy(template)
    raise TypeError("callbacks must be a list of callbacks (copied for every model) or a "
                    f"function returning such a list, got {type(callbacks).__name__}")


# -- training one model ------------------------------------------------------------
@dataclass
class _Job:
    """One model to train: everything a worker needs, picklable."""

    index: int
    seed: int
    config: dict
    x: object
    y: object
    validation_data: object


def _build(build_fn, config):
    """``build_fn(**config)`` (one build at a time), checked to be a compiled model.

    Called inside the model's seed scope, which the build and the training share.
    """
    with _BUILD_LOCK:
        model = build_fn(**config)
    if not callable(getattr(model, "fit", None)) or not callable(getattr(model, "get_weights",
                                                                          None)):
        raise TypeError(f"build_fn must return a fastrnn model (with fit and get_weights), "
                        f"got {type(model).__name__}")
    if getattr(model, "optimizer", None) is None:
        raise ValueError("build_fn must return a compiled model: call "
                         "model.compile(optimizer=..., loss=...) before returning it")
    return model


def _train_one(build_fn, job, fit_kwargs, make_callbacks, keep_model, errors):
    """Build and train one model under its own seed; a :class:`FitResult`."""
    model = None
    with initializers._seed_scope(job.seed):
        try:
            model = _build(build_fn, job.config)
            kwargs = dict(fit_kwargs)
            if job.validation_data is not None:
                kwargs["validation_data"] = job.validation_data
            if make_callbacks is not None:
                kwargs["callbacks"] = make_callbacks()
            history = model.fit(job.x, job.y, verbose=0, **kwargs).history
        except Exception as err:
            return _failed(job, model, err, keep_model, errors)
    return _succeeded(job, model, history, keep_model)


def _failed(job, model, err, keep_model, errors):
    """The result of a model whose build or training raised ``err`` (or ``err`` raised)."""
    if errors == "raise":
        _add_note(err, f"fit_many: raised by model {job.index} (seed {job.seed}, "
                       f"config {job.config!r})")
        raise err
    weights = (model.get_weights() if model is not None and getattr(model, "built", True)
               else [])
    return FitResult(job.index, job.seed, job.config, weights, {}, math.nan,
                     None, model if keep_model else None, err)


def _succeeded(job, model, history, keep_model):
    """The result of a trained model, from its ``History.history``."""
    history = {k: [float(v) for v in vs] for k, vs in history.items()}
    losses = history.get("loss", [])
    val = history.get("val_loss")
    return FitResult(job.index, job.seed, job.config, model.get_weights(), history,
                     losses[-1] if losses else math.nan, val[-1] if val else None,
                     model if keep_model else None)


# -- copies of one model ------------------------------------------------------------
class _Copies:
    """Many models of one configuration, trained as copies of one built model.

    Building a model is most of the Python work per model (~1 ms for the
    tutorial's, as much as a third of its training).  Models of one
    ``build_fn`` configuration differ only in their initial weights and
    shuffling, so after one build the others are copies
    (:meth:`fastrnn.Sequential._replica_begin`): the same plan and settings,
    the initial weights drawn by replaying the build's initializer calls
    under the copy's seed (:meth:`fastrnn.Sequential._replayed_params`).
    :func:`_checked_copies` accepts copies for a configuration only after one
    copy agreed bitwise with its own build.

    Parameters
    ----------
    model : Model
        The built model, after :meth:`_fit_compiled_begin`.
    records : list
        What :class:`fastrnn.layers.layer.recording_builds` saw as it was built.
    job : _Job
        The job it was built for: copies need data of the same layout.
    """

    def __init__(self, model, records, job):
        self.model = model
        self.records = records
        self.config = job.config
        self.signature = _data_signature(job)
        self._prepared = (None, None, None)     # the last (x, y, their checked arrays)

    def fits(self, job):
        """Whether ``job`` may train as a copy: the same config, its data laid out
        like the model's."""
        return _data_signature(job) == self.signature and _same_config(job.config,
                                                                        self.config)

    def begin(self, job, fit_kwargs):
        """:meth:`_fit_compiled_begin` of ``job``'s model, as a copy (under its seed)."""
        model = self.model
        with initializers._seed_scope(job.seed):
            params = model._replayed_params(self.records)
            if params is None:
                raise ValueError("the build's recorded draws do not fill the model's weights")
            x, y, prepared = self._prepared     # models sharing a dataset check it once
            if x is not job.x or y is not job.y:
                prepared = model._prepare(job.x, job.y, None, None)
                self._prepared = (job.x, job.y, prepared)
            return model._replica_begin(params, job.x, job.y, fit_kwargs["epochs"],
                                        fit_kwargs["batch_size"], fit_kwargs["shuffle"],
                                        prepared)

    def weights(self, params):
        """The weights of a copy, in ``get_weights()`` order, from its flat buffer."""
        return [params[off:off + math.prod(shape)].reshape(shape).copy()
                for _, shape, off in self.model.param_layout]


def _data_signature(job):
    return tuple((a.shape[1:], a.dtype) for a in (job.x, job.y))


def _same_config(a, b):
    try:
        return bool(a == b)
    except Exception:   # e.g. arrays among the values: no copies
        return False


def _config_key(job):
    """A key equal for equal configs (most of them; :func:`_config_groups` checks)."""
    try:
        return repr(sorted(job.config.items()))
    except Exception:
        return ("alone", job.index)


def _config_groups(jobs):
    """The jobs in lists of equal configs (first-appearance order)."""
    groups = {}
    for job in jobs:
        key = _config_key(job)
        members = groups.get(key)
        if members is None:
            groups[key] = [job]
        elif _same_config(members[0].config, job.config):
            members.append(job)
        else:
            groups[("alone", job.index)] = [job]
    return list(groups.values())


#: copies are tried for a configuration only with at least this many models
#: (the check costs two builds and two epochs; a copy saves ~0.6 ms)
_MIN_COPIES = 8


def _make_copies(build_fn, jobs, fit_kwargs):
    """:class:`_Copies` for each configuration with enough models that passes the check
    of :func:`_checked_copies`; a dict config key (:func:`_config_key`) -> _Copies."""
    copies = {}
    for group in _config_groups(jobs):
        if len(group) >= _MIN_COPIES:
            candidate = _checked_copies(build_fn, group[0], group[1], fit_kwargs)
            if candidate is not None:
                copies[_config_key(group[0])] = candidate
    return copies


def _checked_copies(build_fn, first, second, fit_kwargs):
    """:class:`_Copies` of ``first``'s model, if a copy set up for ``second`` is
    bitwise ``second``'s own build (else None).

    ``first``'s model is built (its initializer calls recorded) and set up;
    then ``second``'s model is built and set up, and so is a copy for it.
    They must agree bitwise in their initial weights, every epoch's row
    order and every batch's learning rate, and after training their first
    epoch side by side, in the weights, the optimizer state and every
    batch's loss.  That catches a ``build_fn`` that draws anything besides
    the initial weights (e.g. a dropout layer's seed) and weights the replay
    does not reproduce; such configurations are built model by model.
    Nothing trained here is a result (the check costs two builds and two
    epochs, whatever the number of epochs).
    """
    from .layers.layer import recording_builds
    infos = []
    try:
        with initializers._seed_scope(first.seed):
            with recording_builds() as records:
                model = _build(build_fn, first.config)
            info = model._fit_compiled_begin(first.x, first.y, fit_kwargs["epochs"],
                                             fit_kwargs["batch_size"], fit_kwargs["shuffle"])
        if info is None:
            return None
        info["engine"].unbind_data()
        candidate = _Copies(model, records, first)
        if not candidate.fits(second):
            return None
        with initializers._seed_scope(second.seed):
            built = _build(build_fn, second.config)
            infos.append(built._fit_compiled_begin(second.x, second.y, fit_kwargs["epochs"],
                                                   fit_kwargs["batch_size"],
                                                   fit_kwargs["shuffle"]))
        if infos[0] is None:
            return None
        infos.append(candidate.begin(second, fit_kwargs))
        own, copy = infos
        if not (np.array_equal(built.params, copy["params"])
                and np.array_equal(own["orders"], copy["orders"])
                and np.array_equal(own["rates"], copy["rates"])):
            return None
        _, losses = _run_engines(infos, epochs=1)
        same = (np.array_equal(losses[0], losses[1], equal_nan=True)
                and np.array_equal(built.params, copy["params"])
                and built.optimizer.iterations == copy["optimizer"].iterations
                and np.array_equal(built.optimizer.state, copy["optimizer"].state,
                                   equal_nan=True))
    except Exception:   # the models' own builds and fits report it
        return None
    finally:
        for info in infos:
            if info is not None:
                info["engine"].unbind_data()
    return candidate if same else None


# -- many models in one compiled call --------------------------------------------------
def _batchable(jobs, fit_kwargs, make_callbacks):
    """Whether every model may train in batched compiled calls (:func:`_train_batched`):
    array data, at least one epoch, and nothing in Python between epochs (no
    callbacks, no validation).  A model that turns out to need more (e.g.
    metrics computed in Python) is then trained alone by ``fit``."""
    return (make_callbacks is None and fit_kwargs["epochs"] >= 1
            and not fit_kwargs["validation_split"]
            and all(job.validation_data is None and _is_array(job.x) and _is_array(job.y)
                    for job in jobs))


def _run_engines(infos, epochs=None):
    """The epochs of the engines of ``infos`` (from :meth:`_fit_compiled_begin`, all
    with one row count per epoch; the first ``epochs`` of them, default all), in one
    GIL-free call; (means, losses)."""
    epochs = len(infos[0]["orders"]) if epochs is None else epochs
    nb = infos[0]["n_batches"]
    means = np.full((len(infos), epochs), np.nan)
    losses = np.full((len(infos), epochs * nb), np.nan)
    try:
        _engine.run_epochs_many([info["engine"] for info in infos],
                                np.stack([info["orders"][:epochs].reshape(-1)
                                          for info in infos]),
                                infos[0]["batch_size"],
                                np.stack([info["rates"][:epochs * nb] for info in infos]),
                                losses, means)
    except BaseException:
        for info in infos:
            info["engine"].unbind_data()
        raise
    return means, losses


def _finish(job, model, info, means, losses, keep_model, errors):
    """The result of a model trained by :func:`_run_engines`."""
    try:
        history = model._fit_compiled_end(info, means, losses).history
    except Exception as err:
        return _failed(job, model, err, keep_model, errors)
    return _succeeded(job, model, history, keep_model)


def _train_batched(build_fn, jobs, fit_kwargs, keep_models, errors, copies=None):
    """Train ``jobs`` with one GIL-free compiled call for all of their epochs.

    Each model is built and set up by ``fit``'s first half under its own
    seed (holding the GIL) -- or, where ``copies`` has its configuration, set
    up as a copy of an already built model (:class:`_Copies`) --, then
    :func:`fastrnn._engine.run_epochs_many` runs every model's epochs back
    to back with the GIL released once, then ``fit``'s second half makes
    each History.  Bitwise what :func:`_train_one` gives for each (the same
    build or replayed draws, the same engine computation).  Models with
    different sample counts go in separate calls.

    Returns
    -------
    list of FitResult
        In the order of ``jobs``.
    """
    results = {}
    begun = {}      # samples per epoch -> [(job, model or _Copies, what fit's first half returned)]
    for job in jobs:
        source = copies.get(_config_key(job)) if copies else None
        if source is not None and source.fits(job):
            try:
                info = source.begin(job, fit_kwargs)
            except Exception:
                source = None   # its own build and fit report the error
            else:
                begun.setdefault(info["orders"].shape[1], []).append((job, source, info))
                continue
        model = None
        with initializers._seed_scope(job.seed):
            try:
                model = _build(build_fn, job.config)
                info = model._fit_compiled_begin(job.x, job.y, fit_kwargs["epochs"],
                                                 fit_kwargs["batch_size"], fit_kwargs["shuffle"])
            except Exception as err:
                results[job.index] = _failed(job, model, err, keep_models, errors)
                continue
        if info is None:    # its fit needs Python between epochs: fit it from a fresh build
            results[job.index] = _train_one(build_fn, job, fit_kwargs, None, keep_models,
                                            errors)
        else:
            begun.setdefault(info["orders"].shape[1], []).append((job, model, info))
    for group in begun.values():
        means, losses = _run_engines([info for _, _, info in group])
        for k, (job, source, info) in enumerate(group):
            if isinstance(source, _Copies):
                info["engine"].unbind_data()
                if info["engine"].last_status:   # went bad: its own fit says how, bitwise
                    results[job.index] = _train_one(build_fn, job, fit_kwargs, None,
                                                    keep_models, errors)
                else:
                    results[job.index] = FitResult(
                        job.index, job.seed, job.config, source.weights(info["params"]),
                        {"loss": means[k].tolist()}, float(means[k][-1]))
            else:
                results[job.index] = _finish(job, source, info, means[k], losses[k],
                                             keep_models, errors)
    return [results[job.index] for job in jobs]


def _add_note(err, note):
    if hasattr(err, "add_note"):    # Python >= 3.11
        err.add_note(note)


def _run_chunk(build_fn, job_tuples, fit_kwargs, make_callbacks, errors):
    """A Dask task: train the models of one chunk (batched when they can be).

    ``job_tuples`` are :class:`_Job` fields as plain tuples, so that Dask
    replaces the futures of scattered arrays among them by the arrays.
    """
    jobs = [_Job(*fields) for fields in job_tuples]
    if _batchable(jobs, fit_kwargs, make_callbacks):
        return _train_batched(build_fn, jobs, fit_kwargs, False, errors,
                              _make_copies(build_fn, jobs, fit_kwargs))
    return [_train_one(build_fn, job, fit_kwargs, make_callbacks, False, errors)
            for job in jobs]


#: False: every model through ``fit`` on the pool (for measurements)
_BATCHED = True

#: models per batched compiled call in one thread
_LOCAL_CHUNK = 32
#: ... and with several threads: few, so that a chunk's GIL-held part (setting
#: up its models: ~0.4 ms per tutorial model as a copy, ~1 ms built) ends
#: before another thread leaving its compiled call has waited the GIL's switch
#: interval (5 ms) and forces a hand-off.  The threads then settle into turns
#: (one sets up while the other trains) instead of setting up at the same time.
_THREAD_CHUNK = 3


# -- the two executors ---------------------------------------------------------------
def _fit_local(build_fn, jobs, fit_kwargs, make_callbacks, keep_models, errors, threads,
               progress):
    if _BATCHED and _batchable(jobs, fit_kwargs, make_callbacks):
        return _fit_local_batched(build_fn, jobs, fit_kwargs, keep_models, errors, threads,
                                  progress)
    results = [None] * len(jobs)
    if threads == 1 or len(jobs) == 1:
        for job in jobs:
            results[job.index] = _train_one(build_fn, job, fit_kwargs, make_callbacks,
                                            keep_models, errors)
            progress(1)
        return results
    with ThreadPoolExecutor(max_workers=min(threads, len(jobs)),
                            thread_name_prefix="fastrnn-fit_many") as pool:
        pending = {pool.submit(_train_one, build_fn, job, fit_kwargs, make_callbacks,
                               keep_models, errors): job.index for job in jobs}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_EXCEPTION)
                failed = sorted((pending[f], f) for f in done if f.exception() is not None)
                if failed:
                    raise failed[0][1].exception()
                for f in done:
                    results[pending.pop(f)] = f.result()
                progress(len(done))
        except BaseException:       # an error or KeyboardInterrupt: start no more models
            for f in pending:
                f.cancel()
            raise
    return results


def _fit_local_batched(build_fn, jobs, fit_kwargs, keep_models, errors, threads, progress):
    """Chunks of models, each trained by :func:`_train_batched`, on ``threads`` threads
    (copies of one model per configuration, unless the models are to be returned)."""
    copies = {} if keep_models else _make_copies(build_fn, jobs, fit_kwargs)
    size = _LOCAL_CHUNK if threads == 1 else _THREAD_CHUNK
    by_samples = sorted(jobs, key=lambda job: (len(job.x), job.index))
    chunks = [by_samples[i:i + size] for i in range(0, len(jobs), size)]
    results = [None] * len(jobs)
    if threads == 1 or len(chunks) == 1:
        for chunk in chunks:
            for r in _train_batched(build_fn, chunk, fit_kwargs, keep_models, errors, copies):
                results[r.index] = r
            progress(len(chunk))
        return results
    with ThreadPoolExecutor(max_workers=min(threads, len(chunks)),
                            thread_name_prefix="fastrnn-fit_many") as pool:
        pending = {pool.submit(_train_batched, build_fn, chunk, fit_kwargs, keep_models,
                               errors, copies) for chunk in chunks}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                failed = [f for f in done if f.exception() is not None]
                if failed:
                    raise failed[0].exception()
                for f in done:
                    for r in f.result():
                        results[r.index] = r
                    progress(len(f.result()))
        except BaseException:       # an error or KeyboardInterrupt: start no more chunks
            for f in pending:
                f.cancel()
            raise
    return results


def _chunks(jobs, chunk_size):
    """Jobs grouped by dataset (first appearance order), cut into chunks of chunk_size."""
    first_seen = {}
    for job in jobs:
        first_seen.setdefault(id(job.x), len(first_seen))
    ordered = sorted(jobs, key=lambda job: (first_seen[id(job.x)], job.index))
    return [ordered[i:i + chunk_size] for i in range(0, len(ordered), chunk_size)]


def _fit_dask(client, build_fn, jobs, fit_kwargs, make_callbacks, keep_models, errors,
              chunk_size, progress):
    try:
        from distributed import Client, as_completed
    except ImportError as e:    # pragma: no cover - client given without distributed
        raise ImportError("fit_many(client=...) needs dask.distributed: "
                          "pip install 'fastrnn[dask]'") from e
    if not isinstance(client, Client):
        raise TypeError(f"client must be a dask.distributed.Client, got "
                        f"{type(client).__name__}")
    if chunk_size is None:
        # about four tasks per worker thread: few enough to amortise a task's
        # overhead over many small models, enough to balance the load
        threads = max(1, sum(client.nthreads().values()))
        chunk_size = max(1, math.ceil(len(jobs) / (4 * threads)))
    chunks = _chunks(jobs, chunk_size)

    # Arrays used by more than one chunk are scattered once, to every worker
    # (broadcast: a lost worker loses no data).  The rest travels inside its
    # chunk's task, where the scheduler keeps it, so Dask can rerun the task
    # elsewhere when a worker dies -- data scattered to a single worker would
    # be lost with it.
    chunk_of = {}
    for c, chunk in enumerate(chunks):
        for job in chunk:
            for array in (job.x, job.y, *(job.validation_data or ())):
                chunk_of.setdefault(id(array), set()).add(c)
    to_share = {}
    for chunk in chunks:
        for job in chunk:
            for array in (job.x, job.y, *(job.validation_data or ())):
                if len(chunk_of[id(array)]) > 1:
                    to_share.setdefault(id(array), array)
    shared = {}
    if to_share:    # one call; each list element is scattered whole
        scattered = client.scatter(list(to_share.values()), broadcast=True, hash=False)
        shared = dict(zip(to_share, scattered))

    def shipped(job):
        val = job.validation_data
        if val is not None:
            val = tuple(shared.get(id(a), a) for a in val)
        return (job.index, job.seed, job.config, shared.get(id(job.x), job.x),
                shared.get(id(job.y), job.y), val)

    run_id = uuid.uuid4().hex[:12]
    futures = [client.submit(_run_chunk, build_fn, [shipped(job) for job in chunk], fit_kwargs,
                             make_callbacks, errors, key=f"fastrnn-fit_many-{run_id}-{c}",
                             pure=False)
               for c, chunk in enumerate(chunks)]
    results = [None] * len(jobs)
    try:
        for future in as_completed(futures):
            chunk_results = future.result()     # an error in a model is raised here
            for r in chunk_results:
                results[r.index] = r
            progress(len(chunk_results))
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        if shared:
            client.cancel(list(shared.values()))
    if keep_models:
        for r in results:
            if r.weights:
                with initializers._seed_scope(r.seed):
                    r.model = _build(build_fn, r.config)
                r.model.set_weights(r.weights)
    return results


# -- the public function ---------------------------------------------------------------
def fit_many(build_fn, datasets, *, configs=None, seeds=None, epochs=1, batch_size=None,
             shuffle=True, validation_data=None, validation_split=0.0, callbacks=None,
             n_jobs=-1, client=None, chunk_size=None, return_models=False, errors="raise",
             verbose=0):
    """Train many independent models in parallel; results in input order.

    Model ``i`` is ``build_fn(**configs[i])`` trained by ``fit`` on
    ``datasets[i]`` under seed ``seeds[i]``.  ``datasets``, ``configs``,
    ``seeds`` and ``validation_data`` each give one entry per model or a
    single entry shared by all (so: one model per dataset, one per
    configuration, one per seed, or any zip of these -- build the product
    with :func:`itertools.product` if you want every combination).

    Parameters
    ----------
    build_fn : callable
        ``build_fn(**config) -> model``: a new, compiled
        :class:`fastrnn.Sequential` (or any model with ``fit``,
        ``get_weights`` and ``optimizer``).  Called inside a model's random
        seed scope (so layers without a ``seed`` get the weights a lone
        seeded run gives) and one call at a time: once per model, or, for a
        configuration of at least 8 models trained as copies (see Notes),
        twice per configuration (per Dask task) -- so it should have no side
        effects besides returning the model.  On a Dask cluster it is
        pickled (cloudpickle: lambdas and closures are fine).
    datasets : (x, y) or list of (x, y)
        Training data, ``x`` of shape (N, T, D) and ``y`` matching the
        model's output, as ``fit`` takes them.  A single pair of arrays is
        shared by every model.
    configs : list of dict, optional
        Keyword arguments for ``build_fn``, one dict per model (or one in
        all).  Default: ``build_fn()`` with no arguments.
    seeds : int or list of int, optional
        Each model's seed (an int: the same for all).  Default: drawn, in
        input order, from fastrnn's global generator, so a run after
        :func:`fastrnn.set_random_seed` is reproducible; the seeds used are in
        the results.
    epochs, batch_size, shuffle, validation_split
        As :meth:`fastrnn.Sequential.fit`, for every model.
    validation_data : (x_val, y_val) or list of (x_val, y_val), optional
        One pair for all models or one per model.
    callbacks : list or callable, optional
        Callbacks for each model's ``fit``: a list (deep-copied for every
        model, since callbacks keep per-fit state) or a function returning a
        new list.  They run in the worker (thread or Dask worker).
    n_jobs : int, default -1
        Threads on this machine: -1 all cores, -2 all but one, ..., 1 runs in
        the calling thread.  Ignored with ``client`` (the cluster's worker
        threads set the parallelism).
    client : dask.distributed.Client, optional
        Train on this Dask cluster instead: models go in chunks of
        ``chunk_size`` per task; arrays shared by several chunks are
        scattered once to every worker, the others travel with their task.
        A worker lost mid-run has its tasks rerun by Dask; the results are
        the same.
    chunk_size : int, optional
        Models per Dask task (default: about four tasks per worker thread).
        Models sharing a dataset go into the same chunks where possible.
    return_models : bool, default False
        Also return the trained models (``FitResult.model``).  Locally they
        are the trained objects; from a cluster they are rebuilt here from
        the weights (a fresh optimizer state).
    errors : {"raise", "return"}, default "raise"
        "raise": the first model that fails (e.g. a
        :class:`fastrnn.errors.NonFiniteTrainingError`) stops the run and its
        exception, noted with the model's index, seed and config, is raised;
        no further models start.  "return": every model runs and a failure
        is reported in its result's ``error``.
    verbose : {0, 1}, default 0
        1 shows a progress bar over the models.  The models' own ``fit``
        always runs silently.

    Returns
    -------
    list of FitResult
        One per model, in input order.

    Notes
    -----
    Results are bitwise those of training each model alone after
    ``fastrnn.set_random_seed(seed)`` (see the module's docstring), whatever
    ``n_jobs``, ``client`` or ``chunk_size``.  Threads pay off because
    fastrnn's compiled training releases the GIL; each thread's BLAS calls
    use one thread.

    When nothing runs in Python between epochs (array data, no
    ``callbacks``, no validation), models go in chunks: a thread (or Dask
    task) builds a chunk's models and sets up their ``fit`` (holding the
    GIL), then trains all of their epochs in one compiled call that
    releases the GIL once, so another thread's models train meanwhile.
    Models of one configuration (equal ``configs`` entries, data of one
    layout; at least 8 of them) are then not built one by one: one build
    serves them all, each model training as a copy of it with its initial
    weights drawn by replaying the build's initializer calls under its own
    seed, which takes about a third of the Python work of a build.  Before
    that a copy is checked against a second build: the same initial weights,
    shuffling and learning rates, and after one epoch side by side the same
    weights, optimizer state and batch losses, bitwise.  A configuration whose build draws
    anything else (e.g. a dropout layer's seed) fails the check and is
    built model by model; with ``return_models=True`` every model is built.
    A model whose ``fit`` needs Python between epochs anyway (e.g. metrics
    computed in NumPy) is trained by ``fit``; with callbacks or validation
    every model is.
    """
    if not callable(build_fn):
        raise TypeError(f"build_fn must be callable, got {type(build_fn).__name__}")
    pairs = _pairs(datasets, "datasets")
    config_list = _configs(configs)
    seed_list = _seeds(seeds)
    vals = None if validation_data is None else _pairs(validation_data, "validation_data")
    n = _broadcast({"datasets": pairs, "configs": config_list, "seeds": seed_list,
                    "validation_data": vals})
    epochs = _optional_positive_int(epochs, "epochs", allow_zero=True)
    if epochs is None:
        raise TypeError("epochs must be an int, got None")
    batch_size = _optional_positive_int(batch_size, "batch_size")
    chunk_size = _optional_positive_int(chunk_size, "chunk_size")
    if errors not in ("raise", "return"):
        raise ValueError(f"errors must be 'raise' or 'return', got {errors!r}")
    if verbose not in (0, 1) or isinstance(verbose, float):
        raise ValueError(f"verbose must be 0 or 1, got {verbose!r}")
    threads = _n_threads(n_jobs)
    make_callbacks = _callbacks_factory(callbacks)
    if seed_list is None:   # drawn here, in input order, from the (seedable) global stream
        rng = initializers._next_generator()
        seed_list = [int(s) for s in rng.integers(0, 2**63, size=n)]

    def pick(values, i):
        return values[0] if len(values) == 1 else values[i]

    jobs = [_Job(i, pick(seed_list, i), dict(pick(config_list, i)), *pick(pairs, i),
                 None if vals is None else pick(vals, i))
            for i in range(n)]
    fit_kwargs = dict(epochs=epochs, batch_size=batch_size, shuffle=bool(shuffle),
                      validation_split=validation_split)
    bar = None
    if verbose == 1:
        import sys

        from tqdm.auto import tqdm
        bar = tqdm(total=n, desc="fit_many", unit="model", file=sys.stdout,
                   dynamic_ncols=True, mininterval=0.1)

    def progress(k):
        if bar is not None:
            bar.update(k)

    try:
        if client is not None:
            return _fit_dask(client, build_fn, jobs, fit_kwargs, make_callbacks,
                             bool(return_models), errors, chunk_size, progress)
        return _fit_local(build_fn, jobs, fit_kwargs, make_callbacks, bool(return_models),
                          errors, threads, progress)
    finally:
        if bar is not None:
            bar.close()
