import numpy as np
import keras

# input_shape=(None, 1): train on short sequences, predict on longer ones.
model = keras.Sequential()
model.add(keras.layers.SimpleRNN(16, input_shape=(None, 1)))
model.add(keras.layers.Dense(1))
model.compile(optimizer="adam", loss="mae")

rng = np.random.default_rng(21)
for length in (5, 8):
    X = rng.uniform(0, 1, size=(128, length, 1)).astype("float32")
    model.fit(X, X.max(axis=1), epochs=3, batch_size=32, verbose=0)
for length in (5, 20):
    probe = rng.uniform(0, 1, size=(4, length, 1)).astype("float32")
    pred = model.predict(probe, verbose=0)
    print(f"length {length}: predictions {pred.shape}, true max {np.round(probe.max(axis=1).ravel(), 2)}")
model.summary()
