"""``keras.layers.RNN(keras.layers.SimpleRNNCell(...))``: the generic RNN layer over a
SimpleRNN cell, which computes exactly what ``SimpleRNN`` does (Keras's SimpleRNN is
that RNN), with the same weights (``kernel``, ``recurrent_kernel``, ``bias``).

Only a single :class:`SimpleRNNCell` is supported (stacked cells, other cells and
cells written in Python are clear errors): fastrnn runs no Python per step.
"""
from .rnn import SimpleRNN, _rate

__all__ = ["SimpleRNNCell", "RNN"]

_CELL_ARGUMENTS = ("activation", "use_bias", "kernel_initializer", "recurrent_initializer",
                   "bias_initializer", "kernel_regularizer", "recurrent_regularizer",
                   "bias_regularizer", "kernel_constraint", "recurrent_constraint",
                   "bias_constraint", "dropout", "recurrent_dropout", "seed")


class SimpleRNNCell:
    """One step of a SimpleRNN, as ``keras.layers.SimpleRNNCell`` (a description for
    :class:`RNN`; fastrnn never runs a cell step by step).

    Parameters
    ----------
    units : int
    activation, use_bias, kernel_initializer, recurrent_initializer, bias_initializer,
    kernel_regularizer, recurrent_regularizer, bias_regularizer, dropout,
    recurrent_dropout, seed
        As :class:`SimpleRNN`'s.
    """

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 name=None, dtype=None, **kwargs):
        kwargs.pop("trainable", None)
        if kwargs:
            raise TypeError(f"SimpleRNNCell got unexpected keyword arguments: "
                            f"{', '.join(sorted(kwargs))}")
        values = dict(locals())
        self.units = units
        self.state_size = units
        self.output_size = units
        self.name = name
        self.dtype = dtype
        self._arguments = {k: values[k] for k in _CELL_ARGUMENTS}
        _rate(dropout, "dropout")
        _rate(recurrent_dropout, "recurrent_dropout")
        self._probe()       # the other arguments checked now, as Keras checks them

    def _probe(self):
        """A SimpleRNN with the cell's arguments (named, without dropout: it takes no
        automatic name and draws no seed)."""
        arguments = dict(self._arguments, dropout=0.0, recurrent_dropout=0.0)
        return SimpleRNN(self.units, dtype=self.dtype, name=self.name or "simple_rnn_cell",
                         **arguments)

    def get_config(self):
        from ..regularizers import serialize
        probe = self._probe()
        config = probe.get_config()
        config["dropout"] = float(self._arguments["dropout"])
        config["recurrent_dropout"] = float(self._arguments["recurrent_dropout"])
        for key in ("return_sequences", "return_state", "go_backwards", "stateful", "unroll",
                    "zero_output_for_mask", "activity_regularizer"):
            config.pop(key, None)
        config["name"] = self.name or "simple_rnn_cell"
        config["seed"] = self._arguments["seed"]
        for key in ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer"):
            config[key] = serialize(getattr(probe, key, None))
        return config

    @classmethod
    def from_config(cls, config):
        from ..saving.keras_layers import parse_dtype
        config = dict(config)
        config.pop("trainable", None)
        if config.get("dtype") is not None:
            config["dtype"] = parse_dtype(config["dtype"], "SimpleRNNCell.from_config")
        return cls(**config)


class RNN(SimpleRNN):
    """``keras.layers.RNN(cell)`` of one :class:`SimpleRNNCell`: a :class:`SimpleRNN`.

    Parameters
    ----------
    cell : SimpleRNNCell
    return_sequences, return_state, go_backwards, stateful : bool
    unroll, zero_output_for_mask : bool
        Accepted (unroll changes nothing; zero_output_for_mask only its default).
    """

    _default_name = "rnn"

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, zero_output_for_mask=False, **kwargs):
        if isinstance(cell, (list, tuple)):
            raise NotImplementedError("RNN of a list of cells (stacked cells) is not "
                                      "supported yet: stack SimpleRNN layers instead")
        if not isinstance(cell, SimpleRNNCell):
            raise NotImplementedError(f"RNN runs a fastrnn SimpleRNNCell only (no Python cell "
                                      f"is run step by step), got {type(cell).__name__}")
        if zero_output_for_mask:
            raise NotImplementedError("zero_output_for_mask=True is not supported here")
        kwargs.setdefault("dtype", cell.dtype)
        super().__init__(cell.units, return_sequences=return_sequences,
                         return_state=return_state, go_backwards=go_backwards,
                         stateful=stateful, **cell._arguments, **kwargs)
        self.cell = cell
        self.unroll = bool(unroll)

    def get_config(self):
        from ._config import _dtype_policy
        return {"name": self.name, "trainable": True, "dtype": _dtype_policy(self.dtype),
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards, "stateful": bool(self.stateful),
                "unroll": self.unroll, "zero_output_for_mask": False,
                "cell": {"module": "keras.layers", "class_name": "SimpleRNNCell",
                         "config": self.cell.get_config(), "registered_name": None}}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        cell = config.pop("cell")
        if isinstance(cell, dict):
            if cell.get("class_name") != "SimpleRNNCell":
                raise NotImplementedError(f"RNN.from_config: cell {cell.get('class_name')!r} "
                                          f"is not supported")
            cell = SimpleRNNCell.from_config(cell["config"])
        config.pop("trainable", None)
        config.pop("dtype", None)
        return cls(cell, **config)
