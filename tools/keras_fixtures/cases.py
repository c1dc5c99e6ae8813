"""The model cases shared by the fixture scripts (imported by both; needs only NumPy).

Each case is a function ``build(lib)`` that makes the same model with
``lib`` = ``fastrnn`` or ``keras``, and a fixed input.
"""
import numpy as np


def tutorial(lib):
    return lib.Sequential([lib.Input((3, 1)), lib.layers.SimpleRNN(20), lib.layers.Dense(1)])


def stacked(lib):
    return lib.Sequential([
        lib.Input((5, 2)),
        lib.layers.SimpleRNN(4, return_sequences=True, go_backwards=True, activation="relu"),
        lib.layers.SimpleRNN(3, return_sequences=True, use_bias=False),
        lib.layers.Dense(2, activation="sigmoid"),
    ])


def many_to_many(lib):
    # variable number of time steps; softmax over the last axis
    return lib.Sequential([lib.Input((None, 3)), lib.layers.SimpleRNN(4, return_sequences=True),
                           lib.layers.Dense(3, activation="softmax")])


def return_state(lib):
    return lib.Sequential([lib.Input((4, 2)),
                           lib.layers.SimpleRNN(3, go_backwards=True, return_state=True)])


def dense_only(lib):
    return lib.Sequential([lib.Input((4,)), lib.layers.Dense(3, activation="tanh"),
                           lib.layers.Dense(2, activation="relu", use_bias=False)])


CASES = {"tutorial": tutorial, "stacked": stacked, "many_to_many": many_to_many,
         "return_state": return_state, "dense_only": dense_only}

# input shape (without batch) per case; None time steps get 6
_X_SHAPES = {"tutorial": (3, 1), "stacked": (5, 2), "many_to_many": (6, 3),
             "return_state": (4, 2), "dense_only": (4,)}


def inputs(case):
    """A fixed float32 input batch of 5 samples for ``case``."""
    rng = np.random.default_rng(sorted(CASES).index(case))
    return rng.standard_normal((5,) + _X_SHAPES[case]).astype(np.float32)
