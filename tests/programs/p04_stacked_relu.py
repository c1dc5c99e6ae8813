import numpy as np
import keras

X = np.random.rand(300, 10, 2).astype("float32")
y = X.sum(axis=(1, 2))
model = keras.models.Sequential([
    keras.layers.SimpleRNN(32, activation="relu", return_sequences=True, input_shape=(10, 2)),
    keras.layers.SimpleRNN(16, activation="relu"),
    keras.layers.Dense(8, activation="relu"),
    keras.layers.Dense(1),
])
model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse", metrics=["mae"])
h = model.fit(X, y, epochs=5, batch_size=32, verbose=0)
print(h.history["loss"][0], h.history["loss"][-1], h.history["mae"][-1])
