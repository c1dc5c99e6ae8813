"""fastrnn.sklearn: scikit-learn's estimator checks, model selection, pickling, Dask.

Needs scikit-learn (``pip install 'fastrnn[sklearn]'``); the Dask test also
needs ``dask[distributed]``.  Everything else skips without them.
"""
import pickle

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastrnn  # noqa: E402
from fastrnn.layers import Dense, Input, SimpleRNN  # noqa: E402
from fastrnn.sklearn import RNNClassifier, RNNRegressor, _classification_head  # noqa: E402


def _expected_failed_checks(estimator):
    """Checks that cannot apply to these estimators, with the reason.

    None today: both estimators pass every check of scikit-learn's suite
    (``check_array_api_input`` skips itself unless SCIPY_ARRAY_API is set; the
    estimators do not claim array-API support, they compute in NumPy).
    """
    return {}


@parametrize_with_checks([RNNRegressor(epochs=30, random_state=0),
                          RNNClassifier(epochs=30, random_state=0)],
                         expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def tutorial():
    X = np.array([np.linspace(i / 10, (i + 2) / 10, 3) for i in range(100)])
    y = (np.arange(100) + 3) / 10
    return X, y


def blobs(n=90, seed=0):
    """Three well separated classes of 6-step sequences with 2 features."""
    rng = np.random.default_rng(seed)
    labels = np.array(["a", "b", "c"])[np.arange(n) % 3]
    X = rng.standard_normal((n, 6, 2)) * 0.3
    X[:, :, 0] += (np.arange(n) % 3)[:, None] - 1.0
    return X, labels


# -- the estimator is the Keras-style seeded run ----------------------------------
@pytest.mark.parametrize("x_ndim", [2, 3])
def test_regressor_equals_the_seeded_fastrnn_run(x_ndim):
    X, y = tutorial()
    X3 = X[:, :, None]
    reg = RNNRegressor(units=20, epochs=7, batch_size=16, learning_rate=0.01, random_state=5)
    reg.fit(X if x_ndim == 2 else X3, y)
    fastrnn.set_random_seed(5)
    model = fastrnn.Sequential([Input((3, 1), dtype="float32"), SimpleRNN(20), Dense(1)])
    model.compile(optimizer=fastrnn.optimizers.Adam(learning_rate=0.01), loss="mse")
    history = model.fit(X3, y, epochs=7, batch_size=16, verbose=0)
    for got, want in zip(reg.model_.get_weights(), model.get_weights()):
        assert np.array_equal(got, want)
    assert reg.loss_curve_ == history.history["loss"] and reg.n_iter_ == 7
    assert reg.n_features_in_ == 3 and reg.predict(X).shape == (100,)
    assert np.array_equal(reg.predict(X), model.predict(X3, verbose=0)[:, 0].astype(np.float64))


def test_regressor_multi_output_and_3d_input():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 4, 3))
    Y = np.stack([X[:, :, 0].sum(1), X[:, :, 1].mean(1)], axis=1)
    reg = RNNRegressor(units=6, epochs=3, random_state=0).fit(X, Y)
    assert reg.n_outputs_ == 2 and reg.predict(X).shape == (50, 2)
    with pytest.raises(ValueError, match="time steps"):
        reg.predict(X[:, :, :2])


def test_classifier_probabilities_and_labels():
    X, y = blobs()
    clf = RNNClassifier(units=8, epochs=40, learning_rate=0.01, random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    assert list(clf.classes_) == ["a", "b", "c"] and proba.shape == (90, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert clf.score(X, y) > 0.9
    binary = RNNClassifier(units=4, epochs=5, random_state=0).fit(X, y == "a")
    assert binary.predict_proba(X).shape == (90, 2) and binary.predict(X).dtype == bool


@pytest.mark.parametrize("n_classes", [1, 2, 3, 5])
def test_classification_head_round_trip(n_classes):
    """encode -> perfect outputs -> decode gives one-hot probabilities of the right classes."""
    units, activation, loss, encode, decode = _classification_head(n_classes)
    codes = np.arange(12) % n_classes
    targets = encode(codes)
    assert targets.shape == (12, units) and activation in ("sigmoid", "softmax")
    proba = decode(targets.astype(np.float32))
    assert proba.shape == (12, n_classes)
    assert np.array_equal(np.argmax(proba, axis=1), codes)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_partial_fit_continues_and_is_reproducible():
    X, y = blobs(60)
    runs = []
    for _ in range(2):
        clf = RNNClassifier(units=5, random_state=3)
        with pytest.raises(ValueError, match="classes"):
            clf.partial_fit(X, y)
        clf.partial_fit(X[:30], y[:30], classes=["a", "b", "c"])
        first = clf.model_
        clf.partial_fit(X[30:], y[30:])
        assert clf.model_ is first and clf.n_iter_ == 2 and len(clf.loss_curve_) == 2
        runs.append(clf.predict_proba(X))
    assert np.array_equal(runs[0], runs[1])
    with pytest.raises(ValueError, match="not in classes"):
        clf.partial_fit(X[:3], ["a", "b", "z"])
    reg = RNNRegressor(units=5, random_state=0)
    for _ in range(3):
        reg.partial_fit(*tutorial())
    assert reg.n_iter_ == 3


def test_pickle_keeps_predictions_and_partial_fit_goes_on():
    X, y = tutorial()
    reg = RNNRegressor(units=5, epochs=3, random_state=0).fit(X, y)
    again = pickle.loads(pickle.dumps(reg))
    assert again.model_ is not reg.model_
    assert np.array_equal(again.predict(X), reg.predict(X))
    again.partial_fit(X, y)
    assert again.n_iter_ == 4 and not np.array_equal(again.predict(X), reg.predict(X))


@pytest.mark.parametrize("params, match", [
    (dict(units=0), "units"), (dict(units=(3, "4")), "units"), (dict(optimizer="rmsprop"),
                                                                "optimizer"),
    (dict(epochs=0), "epochs"), (dict(batch_size=2.5), "batch_size"), (dict(dtype="int8"), "dtype"),
    (dict(loss="hinge"), "loss"), (dict(random_state=-1), "random_state"),
])
def test_bad_hyperparameters_are_named_at_fit(params, match):
    X, y = tutorial()
    reg = RNNRegressor(**params)        # scikit-learn: __init__ only stores
    with pytest.raises(ValueError, match=match):
        reg.fit(X, y)


# -- model selection ------------------------------------------------------------------
def test_grid_search_over_units_and_learning_rate():
    X, y = tutorial()
    grid = {"units": [4, 12], "learning_rate": [0.001, 0.03]}
    search = GridSearchCV(RNNRegressor(epochs=15, random_state=0), grid, cv=3)
    search.fit(X, y)
    assert search.best_params_ == {"units": 12, "learning_rate": 0.03}
    assert search.best_estimator_.model_.layers[0].units == 12
    # the same search on two threads gives the same scores, bitwise
    import joblib
    with joblib.parallel_backend("threading", n_jobs=2):
        threaded = GridSearchCV(RNNRegressor(epochs=15, random_state=0), grid, cv=3,
                                n_jobs=2).fit(X, y)
    assert np.array_equal(threaded.cv_results_["mean_test_score"],
                          search.cv_results_["mean_test_score"])


def test_pipeline_and_cross_val_score():
    X, y = blobs()
    pipe = make_pipeline(StandardScaler(), RNNClassifier(units=6, epochs=40, learning_rate=0.01,
                                                             random_state=0))
    X2 = X[:, :, 0]                                     # (n, T): one feature per step
    scores = cross_val_score(pipe, X2, y, cv=KFold(3, shuffle=True, random_state=0))
    assert scores.shape == (3,) and scores.mean() > 0.8
    assert clone(pipe).get_params()["rnnclassifier__units"] == 6


def test_grid_search_on_dask_through_joblib():
    pytest.importorskip("distributed")
    import joblib
    from distributed import Client, LocalCluster
    X, y = tutorial()
    grid = {"units": [3, 6], "epochs": [2, 4]}
    local = GridSearchCV(RNNRegressor(random_state=1), grid, cv=2).fit(X, y)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster, Client(cluster):
        with joblib.parallel_backend("dask"):
            on_dask = GridSearchCV(RNNRegressor(random_state=1), grid, cv=2, n_jobs=-1).fit(X, y)
    assert np.array_equal(on_dask.cv_results_["mean_test_score"],
                          local.cv_results_["mean_test_score"])
    assert np.array_equal(on_dask.predict(X), local.predict(X))
