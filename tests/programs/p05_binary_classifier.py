import numpy as np
import keras

rng = np.random.default_rng(1)
X = rng.normal(size=(400, 12, 1)).astype("float32")
y = (X.sum(axis=(1, 2)) > 0).astype("float32")
model = keras.Sequential()
model.add(keras.layers.Input(shape=(12, 1)))
model.add(keras.layers.SimpleRNN(8))
model.add(keras.layers.Dense(1, activation="sigmoid"))
model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
model.fit(X, y, epochs=10, batch_size=32, verbose=0)
loss, acc = model.evaluate(X, y, verbose=0)
print(f"accuracy {acc:.3f}")
