import numpy as np
import keras

# K-fold validation: one architecture, a fresh copy of it per fold.
rng = np.random.default_rng(10)
X = rng.uniform(-1, 1, size=(240, 6, 2)).astype("float32")
y = (X[:, :, 0] * X[:, :, 1]).sum(axis=1)

base = keras.Sequential([
    keras.Input(shape=(6, 2)),
    keras.layers.SimpleRNN(12, name="rnn"),
    keras.layers.Dense(1, name="out"),
], name="base_model")

folds = np.array_split(np.arange(len(X)), 3)
scores = []
for k, test_idx in enumerate(folds):
    train_idx = np.setdiff1d(np.arange(len(X)), test_idx)
    model = keras.models.clone_model(base)
    model.compile(optimizer="adam", loss="mse")
    model.fit(X[train_idx], y[train_idx], epochs=3, batch_size=32, verbose=0)
    scores.append(model.evaluate(X[test_idx], y[test_idx], verbose=0))
    print(f"fold {k}: layers {[layer.name for layer in model.layers]}")
print("folds scored:", len(scores), "all finite:", bool(np.all(np.isfinite(scores))))
print("base untouched:", not base.optimizer if hasattr(base, "optimizer") else True)
