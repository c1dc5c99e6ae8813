"""The callbacks beyond History/EarlyStopping, against Keras 3's recorded behaviour and in fit.

Scripted-epoch cases come from tools/keras_fixtures/record_utils.py (real
Keras callbacks driven with the same epoch logs); the fit tests train tiny
models through the public API.
"""
import json
import os
import types
import warnings

import numpy as np
import pytest

import fastrnn as keras
from fastrnn import schedules
from fastrnn.callbacks import (CallbackList, CSVLogger, EarlyStopping, History, LambdaCallback,
                               LearningRateScheduler, ModelCheckpoint, ProgbarLogger,
                               ReduceLROnPlateau, TerminateOnNaN)
from tolerances import assert_close

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "keras", "callbacks.json")
with open(FIXTURES) as _f:
    KERAS = json.load(_f)


class FakeModel:
    """What the callbacks touch: optimizer, weights, stop_training, save/save_weights."""

    def __init__(self, lr=0.01):
        self.optimizer = types.SimpleNamespace(learning_rate=lr, iterations=0)
        self.stop_training = False
        self.value = 0
        self.restored = None
        self.saves = 0

    def get_weights(self):
        return [np.array([self.value])]

    def set_weights(self, weights):
        self.restored = int(weights[0][0])

    def _write(self, filepath):
        self.saves += 1
        with open(filepath, "w") as f:
            f.write(f"epoch {self.value}")

    save = save_weights = _write


def drive(callback, series, monitor, model=None):
    """Run a callback through scripted epochs exactly as the recording script did."""
    model = model or FakeModel()
    cbs = CallbackList([callback], model, {"epochs": len(series), "steps": 1, "verbose": 0})
    cbs.on_train_begin()
    epochs, lrs, logged = [], [], []
    for epoch, value in enumerate(series):
        model.value = epoch
        cbs.on_epoch_begin(epoch)
        logs = {"loss": 1.0 + epoch, monitor: value} if monitor != "loss" else {"loss": value}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cbs.on_epoch_end(epoch, logs)
        epochs.append(epoch)
        lrs.append(model.optimizer.learning_rate)
        logged.append(logs)
        if model.stop_training:
            break
    cbs.on_train_end()
    return {"epochs_run": epochs, "learning_rates": lrs, "logs": logged, "model": model}


def ids(section):
    return [c["name"] for c in KERAS[section]]


# -- against Keras -----------------------------------------------------------------------------

@pytest.mark.parametrize("case", KERAS["early_stopping"], ids=ids("early_stopping"))
def test_early_stopping_matches_keras(case):
    cb = EarlyStopping(**case["kwargs"])
    run = drive(cb, case["series"], case["monitor"])
    assert run["epochs_run"] == case["epochs_run"]
    assert cb.stopped_epoch == case["stopped_epoch"]
    assert run["model"].restored == case["restored"]


@pytest.mark.parametrize("case", KERAS["reduce_lr"], ids=ids("reduce_lr"))
def test_reduce_lr_on_plateau_matches_keras(case):
    run = drive(ReduceLROnPlateau(**case["kwargs"]), case["series"], case["monitor"])
    assert run["epochs_run"] == case["epochs_run"]
    # Keras keeps rates in float32
    assert_close(run["learning_rates"], case["learning_rates"], "keras_fixture", np.float32)
    assert_close([logs["learning_rate"] for logs in run["logs"]],
                 [logs["learning_rate"] for logs in case["logs"]], "keras_fixture", np.float32)


@pytest.mark.parametrize("case", KERAS["checkpoint"], ids=ids("checkpoint"))
def test_model_checkpoint_matches_keras(case, tmp_path):
    kwargs = dict(case["kwargs"], filepath=str(tmp_path / case["kwargs"]["filepath"]))
    run = drive(ModelCheckpoint(**kwargs), case["series"], case["monitor"])
    assert sorted(os.listdir(tmp_path)) == sorted(set(case["saved"]))
    assert run["model"].saves == len(case["saved"])


@pytest.mark.parametrize("case", KERAS["scheduler"], ids=ids("scheduler"))
def test_learning_rate_scheduler_matches_keras(case):
    schedule = {"two_args": lambda epoch, lr: lr if epoch < 3 else lr * 0.5,
                "one_arg": lambda epoch: 0.1 / (epoch + 1)}[case["name"]]
    run = drive(LearningRateScheduler(schedule), [1.0] * 6, "loss", FakeModel(lr=0.02))
    assert_close(run["learning_rates"], case["learning_rates"], "keras_fixture", np.float32)
    assert_close([logs["learning_rate"] for logs in run["logs"]],
                 [logs["learning_rate"] for logs in case["logs"]], "keras_fixture", np.float32)


@pytest.mark.parametrize("case", KERAS["csv"], ids=ids("csv"))
def test_csv_logger_writes_what_keras_writes(case, tmp_path):
    path = tmp_path / "log.csv"

    def rows():
        return [{k: (np.array(v) if k in case["array_keys"] else v) for k, v in r.items()}
                for r in case["rows"]]

    cb = CSVLogger(path, **case["kwargs"])
    cbs = CallbackList([cb], FakeModel(), {})
    cbs.on_train_begin()
    for epoch, logs in enumerate(rows()):
        cbs.on_epoch_end(epoch, logs)
    cbs.on_train_end()
    assert path.read_bytes().decode() == case["text"]
    again = CallbackList([CSVLogger(path, append=True, **case["kwargs"])], FakeModel(), {})
    again.on_train_begin()
    again.on_epoch_end(0, rows()[0])
    again.on_train_end()
    assert path.read_bytes().decode() == case["appended"]


# -- the CallbackList contract ------------------------------------------------------------------

def test_only_callbacks_with_batch_hooks_want_batches(tmp_path):
    model = FakeModel()

    def wants(*callbacks):
        return CallbackList(list(callbacks), model, {}).wants_batches

    epoch_only = [EarlyStopping(), ReduceLROnPlateau(), LearningRateScheduler(lambda e, lr: lr),
                  CSVLogger(tmp_path / "a.csv"), TerminateOnNaN(), ProgbarLogger(), History(),
                  ModelCheckpoint(tmp_path / "w.npz"),
                  LambdaCallback(on_epoch_end=lambda epoch, logs: None,
                                 on_train_begin=lambda logs: None)]
    assert not wants(*epoch_only)
    assert wants(LambdaCallback(on_train_batch_end=lambda batch, logs: None))
    assert wants(LambdaCallback(on_train_batch_begin=lambda batch, logs: None))
    assert wants(LambdaCallback(on_batch_end=lambda batch, logs: None))
    assert wants(ModelCheckpoint(tmp_path / "w.npz", save_freq=3))


def test_history_runs_after_the_others_and_logs_are_dicts():
    seen = []
    history = History()
    spy = LambdaCallback(on_train_begin=lambda logs: seen.append(logs),
                         on_epoch_begin=lambda epoch, logs: seen.append(logs))
    cbs = CallbackList([history, spy, ReduceLROnPlateau(monitor="loss")], FakeModel(0.5), {})
    assert cbs.callbacks[-1] is history
    cbs.on_train_begin()
    cbs.on_epoch_begin(0)
    cbs.on_epoch_end(0, {"loss": 1.0})
    assert seen == [{}, {}]
    assert history.history == {"loss": [1.0], "learning_rate": [0.5]}


def test_lambda_callback_passes_logs_as_keras_does():
    calls = []
    cb = LambdaCallback(on_train_batch_begin=lambda batch, logs: calls.append(("b", batch, logs)),
                        on_train_batch_end=lambda batch, logs=None: calls.append(
                            ("e", batch, logs)),
                        on_train_end=lambda logs: calls.append(("end", logs)))
    cbs = CallbackList([cb], FakeModel(), {})
    cbs.on_train_batch_begin(0)
    cbs.on_train_batch_end(0, {"loss": 2.0})
    cbs.on_train_end({"loss": 2.0})
    assert calls == [("b", 0, {}), ("e", 0, {"loss": 2.0}), ("end", {"loss": 2.0})]
    with pytest.raises(TypeError, match="on_epoch_end"):
        LambdaCallback(on_epoch_end=3)


# -- ModelCheckpoint --------------------------------------------------------------------------

def test_checkpoint_never_destroys_the_last_good_file(tmp_path):
    model = FakeModel()
    path = tmp_path / "best.npz"
    cb = ModelCheckpoint(path, save_weights_only=True)
    cbs = CallbackList([cb], model, {})
    cbs.on_train_begin()
    cbs.on_epoch_end(0, {"val_loss": 1.0})
    assert path.read_text() == "epoch 0"

    def broken_save(filepath):
        with open(filepath, "w") as f:
            f.write("half a fi")
        raise OSError("disk full")

    model.save_weights = broken_save
    model.value = 1
    with pytest.raises(OSError, match="disk full"):
        cbs.on_epoch_end(1, {"val_loss": 0.5})
    assert path.read_text() == "epoch 0"
    assert os.listdir(tmp_path) == ["best.npz"]        # no temporary file left behind


def test_checkpoint_errors(tmp_path):
    with pytest.raises(ValueError, match="save_freq"):
        ModelCheckpoint(tmp_path / "a.npz", save_freq="batch")
    with pytest.raises(ValueError, match="save_freq"):
        ModelCheckpoint(tmp_path / "a.npz", save_freq=0)
    with pytest.raises(ValueError, match="mode"):
        ModelCheckpoint(tmp_path / "a.npz", mode="best")
    with pytest.raises(TypeError, match="filepath"):
        ModelCheckpoint(3)
    cb = ModelCheckpoint(str(tmp_path / "{epoch}-{val_acc}.npz"), save_weights_only=True)
    cbs = CallbackList([cb], FakeModel(), {})
    cbs.on_train_begin()
    with pytest.raises(KeyError, match="val_acc"):
        cbs.on_epoch_end(0, {"loss": 1.0})
    (tmp_path / "folder.npz").mkdir()
    cbs = CallbackList([ModelCheckpoint(tmp_path / "folder.npz", save_weights_only=True)],
                       FakeModel(), {})
    cbs.on_train_begin()
    with pytest.raises(IsADirectoryError, match="non-directory"):
        cbs.on_epoch_end(0, {"loss": 1.0})


def test_checkpoint_of_the_whole_model_needs_a_save_method(tmp_path):
    class WeightsOnly:
        def save_weights(self, filepath):
            pass

    cbs = CallbackList([ModelCheckpoint(tmp_path / "m.keras")], WeightsOnly(), {})
    with pytest.raises(TypeError, match=r"model\.save\(filepath\).*WeightsOnly.*"
                                        r"save_weights_only=True"):
        cbs.on_train_begin()


def test_checkpoint_best_only_missing_monitor_saves_with_a_warning(tmp_path):
    cb = ModelCheckpoint(tmp_path / "b.npz", save_best_only=True, save_weights_only=True)
    cbs = CallbackList([cb], FakeModel(), {})
    cbs.on_train_begin()
    with pytest.warns(UserWarning, match="val_loss"):
        cbs.on_epoch_end(0, {"loss": 1.0})
    assert (tmp_path / "b.npz").exists()


def test_checkpoint_verbose_messages(tmp_path, capsys):
    cb = ModelCheckpoint(tmp_path / "b.npz", save_best_only=True, save_weights_only=True,
                         verbose=1)
    cbs = CallbackList([cb], FakeModel(), {})
    cbs.on_train_begin()
    cbs.on_epoch_end(0, {"val_loss": 0.5})
    cbs.on_epoch_end(1, {"val_loss": 0.7})
    out = capsys.readouterr().out
    assert "Epoch 1: val_loss improved from None to 0.50000, saving model to" in out
    assert "Epoch 2: val_loss did not improve from 0.50000" in out


# -- monitors, learning rates, NaN --------------------------------------------------------------

def test_auto_mode_follows_keras_names():
    assert EarlyStopping(monitor="val_accuracy").mode == "max"
    assert EarlyStopping(monitor="mae").mode == "min"
    assert EarlyStopping(monitor="val_auc").mode == "max"
    cb = EarlyStopping(monitor="val_my_score")
    cb.set_model(FakeModel())
    cb.on_train_begin()
    with pytest.raises(ValueError, match="mode='max'"):
        cb.on_epoch_end(0, {"val_my_score": 1.0})
    # a metric object on the model that declares its direction decides
    model = FakeModel()
    model.metrics = [types.SimpleNamespace(name="my_score", _direction="up")]
    cb = EarlyStopping(monitor="val_my_score", patience=0)
    run = drive(cb, [1.0, 2.0, 1.5], "val_my_score", model)
    assert cb.mode == "max" and run["epochs_run"] == [0, 1, 2] and cb.best == 2.0


def test_argument_errors_name_the_argument():
    with pytest.raises(ValueError, match="factor"):
        ReduceLROnPlateau(factor=1.0)
    with pytest.raises(ValueError, match="factor"):
        ReduceLROnPlateau(factor=-0.5)
    with pytest.raises(ValueError, match="min_lr"):
        ReduceLROnPlateau(min_lr=-1.0)
    with pytest.raises(ValueError, match="cooldown"):
        ReduceLROnPlateau(cooldown=-1)
    with pytest.raises(ValueError, match="start_from_epoch"):
        EarlyStopping(start_from_epoch=-2)
    with pytest.raises(ValueError, match="baseline"):
        EarlyStopping(baseline=float("nan"))
    with pytest.raises(TypeError, match="schedule"):
        LearningRateScheduler(0.1)
    with pytest.raises(ValueError, match="separator"):
        CSVLogger("x.csv", separator=", ")
    with pytest.warns(UserWarning, match="epsilon"):
        ReduceLROnPlateau(epsilon=1e-3)


@pytest.mark.parametrize("returned, error", [
    (1, "should be a float"), (np.array([0.1]), "should be a float"),
    (float("nan"), "finite"), (-0.1, ">= 0"), (np.float32(0.05), None)])
def test_scheduler_checks_what_the_schedule_returns(returned, error):
    cb = LearningRateScheduler(lambda epoch, lr: returned)
    model = FakeModel()
    cb.set_model(model)
    if error is None:
        cb.on_epoch_begin(0)
        assert model.optimizer.learning_rate == pytest.approx(0.05)
    else:
        with pytest.raises(ValueError, match=error):
            cb.on_epoch_begin(0)


def test_scheduler_does_not_mask_a_type_error_inside_the_schedule():
    def schedule(epoch, lr):
        return lr + "oops"

    cb = LearningRateScheduler(schedule)
    cb.set_model(FakeModel())
    with pytest.raises(TypeError, match="str"):
        cb.on_epoch_begin(0)


def test_an_optimizer_driven_by_a_schedule_is_read_but_not_set():
    model = FakeModel()
    model.optimizer.learning_rate = schedules.ExponentialDecay(0.1, 10, 0.5)
    model.optimizer.iterations = 10
    logs = {"loss": 1.0}
    plateau = ReduceLROnPlateau(monitor="loss", patience=0)
    plateau.set_model(model)
    plateau.on_train_begin()
    plateau.on_epoch_end(0, logs)
    assert logs["learning_rate"] == pytest.approx(0.05)
    with pytest.raises(TypeError, match="not settable"):
        plateau.on_epoch_end(1, {"loss": 2.0})
    cb = LearningRateScheduler(lambda epoch, lr: lr)
    cb.set_model(model)
    with pytest.raises(TypeError, match="not settable"):
        cb.on_epoch_begin(0)


def test_terminate_on_nan(capsys):
    model = FakeModel()
    cbs = CallbackList([TerminateOnNaN()], model, {})
    assert cbs.on_nonfinite_loss(3, {"loss": float("nan")}) is True
    assert model.stop_training and "Batch 3: Invalid loss, terminating training" in \
        capsys.readouterr().out
    assert CallbackList([History()], FakeModel(), {}).on_nonfinite_loss(0) is False
    strict = CallbackList([TerminateOnNaN(raise_error=True)], FakeModel(), {})
    with pytest.raises(RuntimeError, match="batch 2"):
        strict.on_nonfinite_loss(2, {"loss": float("inf")})
    model = FakeModel()
    CallbackList([TerminateOnNaN()], model, {}).on_epoch_end(0, {"loss": 1.0})
    assert not model.stop_training
    CallbackList([TerminateOnNaN()], model, {}).on_epoch_end(0, {"loss": float("inf")})
    assert model.stop_training


# -- in fit ------------------------------------------------------------------------------------

def tiny_model(lr=0.01):
    keras.set_random_seed(0)
    model = keras.Sequential([keras.Input((3, 1)), keras.layers.SimpleRNN(4),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr), loss="mse")
    return model


def data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, 3, 1))
    return x, x.sum(axis=(1, 2))


def test_fit_with_scheduler_and_plateau_records_learning_rates():
    x, y = data()
    model = tiny_model(lr=0.02)
    history = model.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=[
        LearningRateScheduler(lambda epoch, lr: 0.02 * 0.5 ** epoch)])
    assert history.history["learning_rate"] == pytest.approx([0.02, 0.01, 0.005, 0.0025])
    assert model.optimizer.learning_rate == pytest.approx(0.0025)

    model = tiny_model(lr=0.02)
    history = model.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=[
        ReduceLROnPlateau(monitor="loss", min_delta=1e9, patience=1, factor=0.5)])
    # min_delta so large that no epoch after the first counts as an improvement
    assert history.history["learning_rate"] == pytest.approx([0.02, 0.02, 0.01, 0.005])


def test_fit_with_a_schedule_changes_the_training():
    x, y = data()
    plain, scheduled = tiny_model(), tiny_model()
    plain.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False)
    scheduled.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False,
                  callbacks=[LearningRateScheduler(lambda epoch, lr: 0.0)])
    assert not np.array_equal(plain.get_weights()[0], scheduled.get_weights()[0])
    np.testing.assert_array_equal(scheduled.get_weights()[0], tiny_model().get_weights()[0])


def test_fit_with_checkpoints(tmp_path):
    x, y = data()
    xv, yv = data(12, seed=1)
    model = tiny_model(lr=0.05)
    at_epoch_end = {}
    keep = LambdaCallback(on_epoch_end=lambda epoch, logs: at_epoch_end.__setitem__(
        epoch, (logs["val_loss"], model.get_weights())))
    every = ModelCheckpoint(tmp_path / "w-{epoch:02d}-{val_loss:.3f}.npz", save_weights_only=True)
    best = ModelCheckpoint(tmp_path / "best.npz", save_best_only=True, save_weights_only=True)
    model.fit(x, y, batch_size=8, epochs=5, verbose=0, validation_data=(xv, yv),
              callbacks=[keep, every, best])
    names = sorted(p for p in os.listdir(tmp_path) if p.startswith("w-"))
    assert [n[:5] for n in names] == ["w-01-", "w-02-", "w-03-", "w-04-", "w-05-"]
    assert names[2] == f"w-03-{at_epoch_end[2][0]:.3f}.npz"
    best_epoch = min(at_epoch_end, key=lambda e: at_epoch_end[e][0])
    reloaded = tiny_model()
    reloaded.load_weights(tmp_path / "best.npz")
    for got, want in zip(reloaded.get_weights(), at_epoch_end[best_epoch][1]):
        np.testing.assert_array_equal(got, want)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


def test_fit_with_batch_checkpoints_and_csv(tmp_path):
    x, y = data()
    model = tiny_model()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[
        ModelCheckpoint(tmp_path / "e{epoch}-b{batch}.npz", save_weights_only=True,
                        save_freq=2),
        CSVLogger(tmp_path / "log.csv")])
    # 3 batches per epoch, a save every 2 batches: after batches 2, 4 (= epoch 2, batch 1), 6
    assert sorted(p for p in os.listdir(tmp_path) if p.endswith(".npz")) == [
        "e1-b2.npz", "e2-b1.npz", "e2-b3.npz"]
    lines = (tmp_path / "log.csv").read_text().splitlines()
    assert lines[0] == "epoch,loss,val_loss" and [ln.split(",")[0] for ln in lines[1:]] == [
        "0", "1"]
    assert all(ln.endswith(",NA") for ln in lines[1:])


def test_fit_with_lambda_batch_hooks_and_progbar():
    x, y = data()
    batches = []
    model = tiny_model()
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[
        ProgbarLogger(),
        LambdaCallback(on_train_batch_end=lambda batch, logs: batches.append(
            (batch, sorted(logs))))])
    assert batches == [(0, ["loss"]), (1, ["loss"]), (2, ["loss"])] * 2
    assert len(history.history["loss"]) == 2


def test_fit_can_be_stopped_by_early_stopping_on_a_known_metric_name():
    x, y = data()
    model = tiny_model()
    stopper = EarlyStopping(monitor="loss", patience=1, min_delta=1e9)
    history = model.fit(x, y, batch_size=8, epochs=10, verbose=0, callbacks=[stopper])
    assert history.epoch == [0, 1] and stopper.stopped_epoch == 1


def test_plateau_at_min_lr_does_nothing(capsys):
    model = FakeModel(lr=0.001)
    cb = ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5, min_lr=0.001, cooldown=3,
                           verbose=1)
    drive(cb, [1.0, 2.0, 3.0], "loss", model)
    assert model.optimizer.learning_rate == 0.001 and cb.cooldown_counter == 0
    assert "reducing" not in capsys.readouterr().out
    model = FakeModel(lr=0.004)
    drive(ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5, verbose=1),
          [1.0, 2.0], "loss", model)
    assert "Epoch 2: ReduceLROnPlateau reducing learning rate to 0.002." in \
        capsys.readouterr().out
