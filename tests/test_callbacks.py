"""Callbacks: hooks called by fit, History, EarlyStopping."""
import numpy as np
import pytest

import fastrnn as keras
from fastrnn.callbacks import Callback, EarlyStopping, History


class FakeModel:
    def __init__(self):
        self.stop_training = False
        self.value = 0
        self.restored = None

    def get_weights(self):
        return [np.array([self.value])]

    def set_weights(self, weights):
        self.restored = int(weights[0][0])


def run(callback, values, monitor="val_loss"):
    """Drive a callback with scripted epoch logs; returns the epochs actually run."""
    model = FakeModel()
    callback.set_model(model)
    callback.on_train_begin()
    ran = []
    for epoch, value in enumerate(values):
        model.value = epoch
        ran.append(epoch)
        callback.on_epoch_end(epoch, {monitor: value})
        if model.stop_training:
            break
    callback.on_train_end()
    return ran, model


def test_early_stopping_patience():
    ran, _ = run(EarlyStopping(patience=2), [5, 4, 4.5, 4.2, 3, 2])
    assert ran == [0, 1, 2, 3]


def test_early_stopping_patience_zero_and_min_delta():
    ran, _ = run(EarlyStopping(patience=0), [5, 6, 1])
    assert ran == [0, 1]
    ran, _ = run(EarlyStopping(patience=0, min_delta=0.5), [5, 4.8, 1])
    assert ran == [0, 1]


def test_early_stopping_max_mode_and_restore_best_weights():
    cb = EarlyStopping(monitor="acc", patience=1, restore_best_weights=True)
    assert cb.mode == "max"
    ran, model = run(cb, [0.5, 0.9, 0.8, 0.7, 0.95], monitor="acc")
    assert ran == [0, 1, 2] and model.restored == 1 and cb.best_epoch == 1
    assert cb.stopped_epoch == 2


def test_early_stopping_warns_on_missing_monitor():
    cb = EarlyStopping(monitor="val_loss")
    cb.set_model(FakeModel())
    cb.on_train_begin()
    with pytest.warns(UserWarning, match="val_loss"):
        cb.on_epoch_end(0, {"loss": 1.0})


def test_early_stopping_argument_errors():
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=-1)


def test_history_records_logs():
    h = History()
    h.on_train_begin()
    h.on_epoch_end(0, {"loss": 2.0, "val_loss": 3.0})
    h.on_epoch_end(1, {"loss": 1.0, "val_loss": 2.5})
    assert h.history == {"loss": [2.0, 1.0], "val_loss": [3.0, 2.5]} and h.epoch == [0, 1]


def small_model():
    keras.set_random_seed(0)
    model = keras.Sequential([keras.Input((3, 1)), keras.layers.SimpleRNN(4),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


def test_fit_calls_hooks_in_order():
    events = []

    class Recorder(Callback):
        def on_train_begin(self, logs=None):
            events.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            events.append(f"epoch_begin {epoch}")

        def on_batch_end(self, batch, logs=None):
            events.append(f"batch_end {batch} {'loss' in logs}")

        def on_epoch_end(self, epoch, logs=None):
            events.append(f"epoch_end {epoch} {sorted(logs)}")

        def on_train_end(self, logs=None):
            events.append("train_end")

    model = small_model()
    x, y = np.random.default_rng(0).uniform(size=(10, 3, 1)), np.ones(10)
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[Recorder()],
              validation_data=(x, y))
    assert events == ["train_begin",
                      "epoch_begin 0", "batch_end 0 True", "batch_end 1 True", "batch_end 2 True",
                      "epoch_end 0 ['loss', 'val_loss']",
                      "epoch_begin 1", "batch_end 0 True", "batch_end 1 True", "batch_end 2 True",
                      "epoch_end 1 ['loss', 'val_loss']",
                      "train_end"]


def test_callback_can_stop_training_and_early_stopping_in_fit():
    class StopAfterTwo(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.stop_training = True

    model = small_model()
    x, y = np.random.default_rng(1).uniform(size=(8, 3, 1)), np.ones(8)
    history = model.fit(x, y, epochs=10, verbose=0, callbacks=[StopAfterTwo()])
    assert history.epoch == [0, 1]

    stopper = EarlyStopping(monitor="loss", patience=0, min_delta=1e9,
                            restore_best_weights=True)
    weights = model.get_weights()
    history = model.fit(x, y, epochs=10, verbose=0, callbacks=stopper)
    assert history.epoch == [0, 1] and stopper.best_epoch == 0
    assert not np.array_equal(weights[0], model.get_weights()[0])  # epoch-0 weights are kept
