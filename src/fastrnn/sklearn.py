"""scikit-learn estimators over fastrnn models: :class:`RNNRegressor`, :class:`RNNClassifier`.

Each estimator builds ``SimpleRNN(units) [-> SimpleRNN ...] -> Dense`` and
trains it with ``fit``; hyperparameters carry the names the layers and
``fit`` use (``units``, ``activation``, ``use_bias``, ``optimizer``,
``learning_rate``, ``epochs``, ``batch_size``, ``shuffle``), so the
estimators work in ``GridSearchCV``, ``cross_val_score``, pipelines, and on a
Dask cluster through joblib's ``"dask"`` backend.

Input ``X`` is ``(n_samples, n_timesteps)`` -- one feature per time step --
or ``(n_samples, n_timesteps, n_features)``.  A fit with ``random_state=s``
(an int) builds and trains exactly the model a Keras-style run after
``fastrnn.set_random_seed(s)`` would, bitwise, in any thread.

Needs scikit-learn >= 1.6 (``pip install 'fastrnn[sklearn]'``).
"""
import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as e:    # not installed, or older than 1.6 (no validate_data)
    raise ImportError(f"fastrnn.sklearn needs scikit-learn >= 1.6: pip install "
                      f"'fastrnn[sklearn]' ({e})") from e

from . import initializers, optimizers
from .layers import Dense, Input, SimpleRNN
from .many import _BUILD_LOCK
from .models import Sequential

__all__ = ["RNNRegressor", "RNNClassifier"]

_OPTIMIZERS = {"adam": optimizers.Adam, "sgd": optimizers.SGD}


def _classification_head(n_classes):
    """How a classifier's output layer, loss and targets look for ``n_classes`` classes.

    Until fastrnn has classification losses, a sigmoid (two classes) or
    softmax (more) output is trained with mean squared error on 0/1 (one-hot)
    targets.  This function is the one place that decides it: switching to
    softmax + categorical cross-entropy (and sigmoid + binary cross-entropy)
    means changing the returned ``loss`` here, nothing else.

    Parameters
    ----------
    n_classes : int
        At least 1.

    Returns
    -------
    units : int
        Outputs of the last Dense layer.
    activation : str
        Its activation.
    loss : str
        The loss ``compile`` gets.
    encode : callable
        ``encode(codes) -> targets``: class indices (n,) to the targets
        ``fit`` gets, shape (n, units).
    decode : callable
        ``decode(outputs) -> proba``: the model's outputs (n, units) to class
        probabilities (n, n_classes), rows summing to 1.
    """
    if n_classes <= 2:
        def encode(codes):
            return codes.reshape(-1, 1).astype(np.float64)

        def decode(out):
            p = np.clip(out[:, 0].astype(np.float64), 0.0, 1.0)
            return np.ones((len(p), 1)) if n_classes == 1 else np.column_stack([1.0 - p, p])

        return 1, "sigmoid", "mse", encode, decode

    def encode(codes):
        return np.eye(n_classes)[codes]

    def decode(out):
        p = np.clip(out.astype(np.float64), 0.0, None)
        return p / p.sum(axis=1, keepdims=True)

    return n_classes, "softmax", "mse", encode, decode


class _RNNEstimator(BaseEstimator):
    """What both estimators share: checking X, building, fitting, pickling."""

    def _check_params(self):
        units = self.units
        if isinstance(units, (int, np.integer)) and not isinstance(units, bool):
            units = (units,)
        try:
            units = tuple(units)
        except TypeError:
            raise TypeError(f"units must be an int or a tuple of ints, got "
                            f"{type(self.units).__name__}") from None
        if not units or any(isinstance(u, bool) or not isinstance(u, (int, np.integer)) or u < 1
                            for u in units):
            raise ValueError(f"units must be a positive int or a non-empty tuple of positive "
                             f"ints, got {self.units!r}")
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(_OPTIMIZERS)}, got "
                             f"{self.optimizer!r}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.dtype not in ("float32", "float64", np.float32, np.float64):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        return tuple(int(u) for u in units)

    def _seed(self):
        """The fastrnn seed for a fit: ``random_state`` itself if it is an int."""
        rs = self.random_state
        if isinstance(rs, (int, np.integer)) and not isinstance(rs, bool):
            if rs < 0:
                raise ValueError(f"random_state must be >= 0, got {rs}")
            return int(rs)
        return int(check_random_state(rs).randint(np.iinfo(np.int32).max))

    def _check_X(self, X, reset, y="no_validation", **y_checks):
        """X (and y, if given) checked by scikit-learn; X shaped (n, T, D) in the model's dtype."""
        dtype = np.dtype(self.dtype if reset else self.structure_["dtype"])
        if isinstance(y, str) and y == "no_validation":
            X = validate_data(self, X, reset=reset, allow_nd=True,
                              dtype=[np.float64, np.float32])
        else:
            X, y = validate_data(self, X, y, reset=reset, allow_nd=True,
                                 dtype=[np.float64, np.float32], **y_checks)
        if X.ndim == 2:
            X = X[:, :, np.newaxis]
        if X.ndim != 3:
            raise ValueError(f"X must have shape (n_samples, n_timesteps) or (n_samples, "
                             f"n_timesteps, n_features), got shape {X.shape}")
        if not reset and X.shape[1:] != self.structure_["input_shape"]:
            raise ValueError(f"X has {X.shape[1]} time steps of {X.shape[2]} features, but "
                             f"{type(self).__name__} was fitted with input "
                             f"{self.structure_['input_shape']} (time steps, features)")
        X = np.ascontiguousarray(X, dtype=dtype)
        return X if isinstance(y, str) and y == "no_validation" else (X, y)

    @staticmethod
    def _make_model(structure):
        """A new compiled model from a fitted structure (see ``structure_``)."""
        s = structure
        layers = [Input(s["input_shape"], dtype=s["dtype"])]
        for i, units in enumerate(s["units"]):
            layers.append(SimpleRNN(units, activation=s["activation"], use_bias=s["use_bias"],
                                    return_sequences=i < len(s["units"]) - 1))
        layers.append(Dense(s["output_units"], activation=s["output_activation"]))
        with _BUILD_LOCK:       # automatic layer names are process-wide
            model = Sequential(layers)
        opt = _OPTIMIZERS[s["optimizer"]](learning_rate=s["learning_rate"])
        model.compile(optimizer=opt, loss=s["loss"])
        return model

    def _structure(self, input_shape, units, output_units, output_activation, loss):
        return dict(input_shape=tuple(int(d) for d in input_shape), units=units,
                    activation=self.activation, use_bias=bool(self.use_bias),
                    output_units=int(output_units), output_activation=output_activation,
                    loss=loss, optimizer=self.optimizer,
                    learning_rate=float(self.learning_rate), dtype=np.dtype(self.dtype).name)

    def _train(self, X, targets, epochs, seed):
        """``fit`` the model on (X, targets) inside ``seed``'s random scope; records the loss."""
        with initializers._seed_scope(seed):
            if getattr(self, "model_", None) is None:
                self.model_ = self._make_model(self.structure_)
            history = self.model_.fit(X, targets, epochs=epochs, batch_size=self.batch_size,
                                      shuffle=self.shuffle, verbose=self.verbose)
        losses = [float(v) for v in history.history.get("loss", [])]
        self.loss_curve_ = getattr(self, "loss_curve_", []) + losses
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else float("nan")
        self.n_iter_ = getattr(self, "n_iter_", 0) + len(losses)

    def _begin_fit(self):
        """Forget a previous fit (``fit`` starts afresh, as in scikit-learn)."""
        for attr in ("model_", "loss_curve_", "loss_", "n_iter_", "structure_", "_partial_rng"):
            self.__dict__.pop(attr, None)

    def _partial_seed(self):
        """The next seed of a partial_fit sequence, reproducible from ``random_state``."""
        if getattr(self, "_partial_rng", None) is None:
            self._partial_rng = np.random.default_rng(self._seed())
        return int(self._partial_rng.integers(0, 2**63))

    def _outputs(self, X):
        check_is_fitted(self, "model_")
        X = self._check_X(X, reset=False)
        return self.model_.predict(X, batch_size=max(32, self.batch_size), verbose=0)

    # -- pickling: weights and structure, never compiled state -----------------
    def __getstate__(self):
        state = dict(super().__getstate__())
        model = state.pop("model_", None)
        if model is not None:
            state["_model_weights"] = model.get_weights()
        return state

    def __setstate__(self, state):
        state = dict(state)
        weights = state.pop("_model_weights", None)
        super().__setstate__(state)
        if weights is not None:
            # rebuilt with a fresh optimizer: partial_fit after unpickling
            # continues from these weights, not from Adam's moments
            self.model_ = self._make_model(self.structure_)
            self.model_.set_weights(weights)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags


_COMMON_PARAMS = """
    units : int or tuple of int, default 20
        Units of the SimpleRNN layer; a tuple stacks several (all but the
        last with ``return_sequences=True``).
    activation : {"tanh", "relu"}, default "tanh"
        The SimpleRNN activation.
    use_bias : bool, default True
    optimizer : {"adam", "sgd"}, default "adam"
    learning_rate : float, default 0.001
    epochs : int, default 100
        Epochs of one ``fit`` (``partial_fit`` runs one).
    batch_size : int, default 32
    shuffle : bool, default True
    random_state : int, RandomState instance or None, default None
        An int is the fastrnn seed itself (``fastrnn.set_random_seed``): it
        fixes the initial weights and the shuffling, bitwise.
    dtype : {"float32", "float64"}, default "float32"
        The model's dtype (float32 as Keras and fastrnn default to).
    verbose : {0, 1, 2}, default 0
        Passed to ``fit``.
"""

_COMMON_ATTRIBUTES = """
    model_ : fastrnn.Sequential
        The trained model.
    structure_ : dict
        What the model was built from (input shape, layers, loss, optimizer).
    n_features_in_ : int
        Time steps of the input (the columns of a 2-D ``X``).
    feature_names_in_ : ndarray of str
        Column names, when ``X`` was a DataFrame with string column names.
    loss_ : float
        The last epoch's training loss.
    loss_curve_ : list of float
        The training loss after every epoch, across ``fit`` or ``partial_fit`` calls.
    n_iter_ : int
        Epochs trained.
"""


class RNNRegressor(RegressorMixin, _RNNEstimator):
    __doc__ = f"""A SimpleRNN regressor: ``SimpleRNN(units) -> Dense(n_outputs)``.

    Parameters
    ----------{_COMMON_PARAMS}    loss : {{"mse", "mae"}}, default "mse"

    Attributes
    ----------{_COMMON_ATTRIBUTES}    n_outputs_ : int
        Targets per sample (1 for a 1-D ``y``).

    Examples
    --------
    >>> import numpy as np
    >>> from fastrnn.sklearn import RNNRegressor
    >>> X = np.array([np.linspace(i / 10, (i + 2) / 10, 3) for i in range(100)])
    >>> y = (np.arange(100) + 3) / 10
    >>> reg = RNNRegressor(units=20, epochs=50, random_state=0).fit(X, y)
    >>> reg.predict(X[:2]).shape
    (2,)
    """

    def __init__(self, units=20, activation="tanh", use_bias=True, optimizer="adam",
                 learning_rate=0.001, epochs=100, batch_size=32, shuffle=True,
                 random_state=None, dtype="float32", verbose=0, loss="mse"):
        self.units = units
        self.activation = activation
        self.use_bias = use_bias
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.random_state = random_state
        self.dtype = dtype
        self.verbose = verbose
        self.loss = loss

    def _targets(self, X, y, reset):
        X, y = self._check_X(X, reset, y, multi_output=True, y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        if reset:
            self._y_ndim = y.ndim
            self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        elif (1 if y.ndim == 1 else y.shape[1]) != self.n_outputs_:
            raise ValueError(f"y has {1 if y.ndim == 1 else y.shape[1]} outputs, but the "
                             f"regressor was fitted with {self.n_outputs_}")
        return X, y.reshape(len(y), -1)

    def _start(self, X, y):
        units = self._check_params()
        if self.loss not in ("mse", "mae"):
            raise ValueError(f"loss must be 'mse' or 'mae', got {self.loss!r}")
        X, y = self._targets(X, y, reset=True)
        self.structure_ = self._structure(X.shape[1:], units, self.n_outputs_, None, self.loss)
        return X, y

    def fit(self, X, y):
        """Build a new model and train it for ``epochs`` epochs.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_timesteps) or (n_samples, n_timesteps, n_features)
        y : array_like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self
        """
        self._begin_fit()
        X, y = self._start(X, y)
        self._train(X, y, self.epochs, self._seed())
        return self

    def partial_fit(self, X, y):
        """Train one epoch on (X, y), building the model on the first call.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_timesteps) or (n_samples, n_timesteps, n_features)
        y : array_like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self
        """
        if getattr(self, "model_", None) is None:
            self._begin_fit()
            X, y = self._start(X, y)
        else:
            X, y = self._targets(X, y, reset=False)
        self._train(X, y, 1, self._partial_seed())
        return self

    def predict(self, X):
        """Predicted targets.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_timesteps) or (n_samples, n_timesteps, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
            float64; 1-D when ``y`` was 1-D.
        """
        out = np.asarray(self._outputs(X), dtype=np.float64)
        return out[:, 0] if self._y_ndim == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


class RNNClassifier(ClassifierMixin, _RNNEstimator):
    __doc__ = f"""A SimpleRNN classifier: ``SimpleRNN(units) -> Dense`` with a probability output.

    Two classes: one sigmoid output; more: a softmax over the classes.  For
    now it is trained with mean squared error on one-hot targets, until
    fastrnn has cross-entropy losses (see :func:`_classification_head`).

    Parameters
    ----------{_COMMON_PARAMS}
    Attributes
    ----------{_COMMON_ATTRIBUTES}    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.

    Examples
    --------
    >>> import numpy as np
    >>> from fastrnn.sklearn import RNNClassifier
    >>> X = np.random.default_rng(0).standard_normal((60, 4))
    >>> y = np.where(X.sum(axis=1) > 0, "up", "down")
    >>> clf = RNNClassifier(units=8, epochs=30, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:3]).shape
    (3, 2)
    """

    def __init__(self, units=20, activation="tanh", use_bias=True, optimizer="adam",
                 learning_rate=0.001, epochs=100, batch_size=32, shuffle=True,
                 random_state=None, dtype="float32", verbose=0):
        self.units = units
        self.activation = activation
        self.use_bias = use_bias
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.random_state = random_state
        self.dtype = dtype
        self.verbose = verbose

    def _start(self, X, y, classes=None):
        units = self._check_params()
        X, y = self._check_X(X, True, y)
        check_classification_targets(y)
        if type_of_target(y) not in ("binary", "multiclass"):
            raise ValueError(f"RNNClassifier takes binary or multiclass targets, got "
                             f"{type_of_target(y)}")
        self.classes_ = np.unique(y if classes is None else np.asarray(classes))
        units_out, activation, loss, _, _ = _classification_head(len(self.classes_))
        self.structure_ = self._structure(X.shape[1:], units, units_out, activation, loss)
        return X, y

    def _codes(self, y):
        unseen = np.setdiff1d(np.unique(y), self.classes_)
        if unseen.size:
            raise ValueError(f"y has labels {unseen.tolist()} that are not in classes "
                             f"{self.classes_.tolist()}")
        encode = _classification_head(len(self.classes_))[3]
        return encode(np.searchsorted(self.classes_, y))

    def fit(self, X, y):
        """Build a new model and train it for ``epochs`` epochs.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_timesteps) or (n_samples, n_timesteps, n_features)
        y : array_like of shape (n_samples,)
            Class labels (any type scikit-learn accepts).

        Returns
        -------
        self
        """
        self._begin_fit()
        X, y = self._start(X, y)
        self._train(X, self._codes(y), self.epochs, self._seed())
        return self

    def partial_fit(self, X, y, classes=None):
        """Train one epoch on (X, y); the first call builds the model.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_timesteps) or (n_samples, n_timesteps, n_features)
        y : array_like of shape (n_samples,)
        classes : array_like, optional
            Every class label there will be; required on the first call.

        Returns
        -------
        self
        """
        if getattr(self, "model_", None) is None:
            if classes is None:
                raise ValueError("classes must be given on the first call to partial_fit")
            self._begin_fit()
            X, y = self._start(X, y, classes)
        else:
            if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
                raise ValueError(f"classes {np.unique(classes).tolist()} differ from those of "
                                 f"the first partial_fit, {self.classes_.tolist()}")
            X, y = self._check_X(X, False, y)
        self._train(X, self._codes(y), 1, self._partial_seed())
        return self

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_timesteps) or (n_samples, n_timesteps, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        outputs = np.asarray(self._outputs(X))      # checks that it is fitted first
        return _classification_head(len(self.classes_))[4](outputs)

    def predict(self, X):
        """The most probable class of each sample.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_timesteps) or (n_samples, n_timesteps, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)      # checks that it is fitted first
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags
