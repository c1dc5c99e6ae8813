import numpy as np
import keras

rng = np.random.default_rng(5)
seqs = [rng.normal(size=(rng.integers(3, 10), 2)) for _ in range(150)]
targets = np.array([s.sum() for s in seqs], dtype="float32")
X = keras.utils.pad_sequences(seqs, maxlen=10, dtype="float32", padding="post", value=0.0)
model = keras.Sequential([
    keras.layers.Input(shape=(10, 2)),
    keras.layers.Masking(mask_value=0.0),
    keras.layers.SimpleRNN(16),
    keras.layers.Dense(1),
])
model.compile(optimizer="adam", loss="mse")
model.fit(X, targets, epochs=3, batch_size=16, verbose=0)
print(model.predict(X[:2], verbose=0))
