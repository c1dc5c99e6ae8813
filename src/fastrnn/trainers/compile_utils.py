"""What ``compile`` keeps: the loss and the metrics, resolved against the data's shapes.

As Keras's ``keras/src/trainers/compile_utils.py``: ``"crossentropy"`` and
``"accuracy"`` (and ``"ce"``, ``"acc"``) are resolved from the shapes of the
first targets and outputs; every metric gets its name in ``history``
(repeats numbered, a weighted metric whose name is taken prefixed with
``weighted_``); metrics the engine knows become engine specs, the others run
in NumPy per batch.
"""
from .. import losses as losses_module
from .. import metrics as metrics_module

__all__ = ["CompileState", "MetricEntry"]


class MetricEntry:
    """One compiled metric: its object, name in the logs, whether it is weighted, and
    the engine spec (None: computed in NumPy per batch)."""

    def __init__(self, metric, name, weighted, spec):
        self.metric = metric
        self.name = name
        self.weighted = weighted
        self.spec = spec

    def result_from(self, total, count):
        """The metric's value after the engine accumulated (total, count)."""
        self.metric.total, self.metric.count = float(total), float(count)
        return float(self.metric.result())

    def __repr__(self):
        where = "engine" if self.spec is not None else "numpy"
        return f"MetricEntry({self.name!r}, {where}, weighted={self.weighted})"


def _as_list(value, argument):
    if value is None:
        return []
    if isinstance(value, dict):
        raise ValueError(f"compile: {argument} as a dict (per output) needs a model with named "
                         f"outputs; this model has one output: pass a list")
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"compile: expected {argument} to be a list or tuple, got "
                         f"{argument}={value!r}")
    return list(value)


class CompileState:
    """The loss and metrics of ``compile``; :meth:`build` resolves them for the data.

    Parameters
    ----------
    loss : str, Loss, class or function
    metrics, weighted_metrics : list, optional

    Raises
    ------
    ValueError, TypeError
        At compile time for any identifier that can never work (unknown name,
        custom loss function), as early as possible.
    """

    def __init__(self, loss, metrics=None, weighted_metrics=None):
        if loss is None:
            raise ValueError("compile: loss is required, e.g. loss='mse' or "
                             "loss='binary_crossentropy'")
        self.loss_identifier = loss
        shape_resolved = isinstance(loss, str) and loss.lower() in losses_module.SHAPE_RESOLVED
        self.loss = None if shape_resolved else losses_module.get(loss)
        self.metric_ids = _as_list(metrics, "metrics")
        self.weighted_ids = _as_list(weighted_metrics, "weighted_metrics")
        for m in self.metric_ids + self.weighted_ids:
            if m is None:
                raise ValueError("compile: a metric is None")
            if not (isinstance(m, str) and m.lower() in metrics_module.SHAPE_RESOLVED):
                metrics_module.get(m)
        self.entries = None
        self.shapes = None
        self._engine_specs = []
        self._python_entries = []

    @property
    def built(self):
        return self.entries is not None

    def build(self, y_shape, out_shape):
        """Resolve the loss and metrics for targets of ``y_shape`` against outputs of
        ``out_shape`` (both with the batch axis)."""
        if self.entries is not None:
            return
        loss = losses_module.resolve(self.loss_identifier, y_shape, out_shape) \
            if self.loss is None else self.loss
        units = out_shape[-1]
        if loss._sparse and len(y_shape) == len(out_shape) and y_shape[-1] != 1:
            raise ValueError(f"y has shape {tuple(y_shape)}, but {loss.name} takes integer "
                             f"labels, shape {tuple(out_shape[:-1])}; for one-hot targets use "
                             f"categorical_crossentropy")
        entries = []
        taken = {}

        def unique(name, weighted):
            if weighted and name in taken:
                name = "weighted_" + name
            if name not in taken:
                taken[name] = 1
                return name
            numbered = f"{name}_{taken[name]}"
            taken[name] += 1
            return numbered

        for ids, weighted in ((self.metric_ids, False), (self.weighted_ids, True)):
            for identifier in ids:
                metric = metrics_module.resolve(identifier, y_shape, out_shape)
                spec = metric._engine_spec()
                if spec is not None and units > 1 and spec["sparse"] != loss._sparse:
                    need = "integer labels" if spec["sparse"] else "one value per output unit"
                    have = ("integer labels" if loss._sparse else
                            f"one value per output unit ({units})")
                    raise ValueError(f"metric {metric.name!r} needs targets of {need}, but "
                                     f"the loss {loss.name!r} takes {have}")
                if spec is not None:
                    spec = dict(spec, weighted=weighted)
                    del spec["sparse"]
                entries.append(MetricEntry(metric, unique(metric.name, weighted), weighted,
                                           spec))
        self.loss = loss
        self.entries = entries
        self._engine_specs = [e.spec for e in entries if e.spec is not None]
        self._python_entries = [e for e in entries if e.spec is None]
        self.shapes = (tuple(y_shape), tuple(out_shape))

    @property
    def engine_specs(self):
        return self._engine_specs

    @property
    def engine_entries(self):
        return [e for e in self.entries if e.spec is not None]

    @property
    def python_entries(self):
        return self._python_entries

    @property
    def names(self):
        return [e.name for e in self.entries]
