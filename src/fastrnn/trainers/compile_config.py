"""The ``compile_config`` of a ``.keras`` file: how a saved model was compiled.

Keras 3 writes ``compile_config`` (the optimizer, loss, loss weights and metrics,
serialized) into ``config.json`` and ``keras.models.load_model`` compiles the
model it loads from it, so a program can ``evaluate`` or keep training a
checkpoint straight away.  fastrnn does the same:

- :func:`write_compile_config` adds it to a ``.keras`` archive
  :meth:`fastrnn.Model.save` has just written (when the model is compiled with
  built-in, serializable pieces: optimizers by class, losses and metrics by
  name or class; a Python function or a learning-rate schedule leaves the
  file without one, and the model loads uncompiled);
- :func:`read_compile_config` and :func:`compile_from_config`, used by
  :func:`fastrnn.models.load_model`, read it back from files fastrnn or Keras
  wrote.  Nothing in it is imported or evaluated: class names are looked up in
  fastrnn's own tables, and anything fastrnn does not have (an optimizer,
  a loss, an argument away from Keras's default) leaves the model uncompiled
  with a warning, as Keras does when it cannot compile a loaded model.
"""
import inspect
import io
import json
import numbers
import warnings
import zipfile

__all__ = ["compile_config", "write_compile_config", "read_compile_config",
           "compile_from_config"]

_CONFIG = "config.json"
_LIMIT = 16 << 20

#: Keras optimizer arguments fastrnn's optimizers do not take, at the value that
#: changes nothing (anything else: the model loads uncompiled, with a warning)
_INERT = {"use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
          "loss_scale_factor": None, "gradient_accumulation_steps": None}


def _keras_object(module, obj):
    return {"module": module, "class_name": type(obj).__name__, "config": obj.get_config(),
            "registered_name": None}


def _serialize_loss(loss):
    from .. import losses
    if loss is None or isinstance(loss, str):
        return loss
    if isinstance(loss, losses.Loss):
        return _keras_object("keras.losses", loss)
    if isinstance(loss, (list, tuple)):
        return [_serialize_loss(item) for item in loss]
    if isinstance(loss, dict):
        return {k: _serialize_loss(v) for k, v in loss.items()}
    name = losses.serialize(loss)           # a built-in function: its name (else TypeError)
    return name


def _serialize_metric(metric):
    from .. import metrics
    if metric is None or isinstance(metric, str):
        return metric
    if isinstance(metric, metrics.Metric):
        if type(metric).__module__.split(".")[0] != "fastrnn":
            raise TypeError(f"a user-defined metric class ({type(metric).__name__})")
        return _keras_object("keras.metrics", metric)
    if isinstance(metric, (list, tuple)):
        return [_serialize_metric(item) for item in metric]
    if isinstance(metric, dict):
        return {k: _serialize_metric(v) for k, v in metric.items()}
    return metrics.serialize(metric)        # a built-in function: its name (else TypeError)


def compile_config(model):
    """Keras's ``compile_config`` dict for ``model`` (None when it is not compiled or
    holds something that cannot be written by name)."""
    optimizer = getattr(model, "optimizer", None)
    args = getattr(model, "_compile_args", None)
    if optimizer is None or args is None:
        return None
    loss, loss_weights, metrics, weighted = args
    config = optimizer.get_config()
    if not isinstance(config.get("learning_rate"), numbers.Real):
        return None                         # a schedule (or a callable): not written
    try:
        return {"optimizer": {"module": "keras.optimizers",
                              "class_name": type(optimizer).__name__, "config": config,
                              "registered_name": None},
                "loss": _serialize_loss(loss), "loss_weights": loss_weights,
                "metrics": _serialize_metric(metrics),
                "weighted_metrics": _serialize_metric(weighted),
                "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False}
    except TypeError:
        return None


def write_compile_config(model, filepath):
    """Add ``model``'s compile config to the ``.keras`` archive at ``filepath`` (if any)."""
    config = compile_config(model)
    if config is None:
        return
    from ..saving._files import atomic_write_bytes
    with zipfile.ZipFile(filepath) as zf:
        members = [(info, zf.read(info.filename)) for info in zf.infolist()]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for info, data in members:
            if info.filename == _CONFIG:
                entry = json.loads(data)
                entry["compile_config"] = config
                data = json.dumps(entry).encode("utf-8")
            zf.writestr(info, data)
    atomic_write_bytes(filepath, out.getbuffer())


def read_compile_config(filepath):
    """The ``compile_config`` of a ``.keras`` archive, or None (absent or unreadable)."""
    try:
        with zipfile.ZipFile(filepath) as zf:
            info = zf.getinfo(_CONFIG)
            if info.file_size > _LIMIT:
                return None
            entry = json.loads(zf.read(_CONFIG))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, RecursionError):
        return None
    config = entry.get("compile_config") if isinstance(entry, dict) else None
    return config if isinstance(config, dict) and config else None   # {}: not compiled


def _optimizer(entry):
    from .. import optimizers
    if isinstance(entry, str):
        return optimizers.get(entry)
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise ValueError(f"optimizer entry {entry!r}")
    name = entry.get("class_name")
    cls = optimizers._BY_NAME.get(str(name).lower())
    if cls is None:
        raise ValueError(f"optimizer {name!r} is not one of fastrnn's")
    accepted = inspect.signature(cls.__init__).parameters
    kwargs = {}
    for key, value in entry["config"].items():
        if key in accepted:
            kwargs[key] = value
        elif key in _INERT and value == _INERT[key]:
            continue
        else:
            raise ValueError(f"optimizer argument {key}={value!r}")
    return cls(**kwargs)


def _deserialize(entry, module):
    from .. import losses, metrics
    if entry is None or isinstance(entry, str):
        return entry
    if isinstance(entry, list):
        return [_deserialize(item, module) for item in entry]
    if isinstance(entry, dict) and "class_name" in entry:
        return (losses if module == "losses" else metrics).deserialize(entry)
    if isinstance(entry, dict):
        return {k: _deserialize(v, module) for k, v in entry.items()}
    raise ValueError(f"{module} entry {entry!r}")


def compile_from_config(model, config):
    """Compile ``model`` as ``config`` says; on anything fastrnn cannot honour, warn and
    leave it uncompiled (as Keras does)."""
    try:
        kwargs = {"optimizer": _optimizer(config.get("optimizer", "rmsprop")),
                  "loss": _deserialize(config.get("loss"), "losses"),
                  "loss_weights": config.get("loss_weights"),
                  "metrics": _deserialize(config.get("metrics"), "metrics"),
                  "weighted_metrics": _deserialize(config.get("weighted_metrics"), "metrics")}
        model.compile(**kwargs)
    except (ValueError, TypeError, NotImplementedError) as e:
        warnings.warn(f"the loaded model was not compiled: its compile config cannot be "
                      f"used by fastrnn ({e}); call compile() yourself", stacklevel=3)
