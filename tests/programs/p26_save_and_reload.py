import os
import tempfile
import numpy as np
import keras

# Train, save as .keras, reload in a fresh session, continue.
keras.utils.set_random_seed(42)
X = np.random.uniform(-1, 1, size=(256, 8, 1)).astype("float32")
y = X.sum(axis=1)

model = keras.Sequential([
    keras.layers.SimpleRNN(16, input_shape=(8, 1)),
    keras.layers.Dense(1),
])
model.compile(optimizer="adam", loss="mse")
model.fit(X, y, epochs=3, batch_size=32, verbose=0)
before = model.predict(X[:5], verbose=0)

path = os.path.join(tempfile.mkdtemp(), "sum_rnn.keras")
model.save(path)
keras.backend.clear_session()
restored = keras.models.load_model(path)
after = restored.predict(X[:5], verbose=0)
print("same predictions after reload:", np.allclose(before, after, atol=1e-6))
print("restored layers:", [layer.__class__.__name__ for layer in restored.layers])
restored.compile(optimizer="adam", loss="mse")
restored.fit(X, y, epochs=1, batch_size=32, verbose=0)
print("loss after one more epoch: %.4f" % restored.evaluate(X, y, verbose=0))
