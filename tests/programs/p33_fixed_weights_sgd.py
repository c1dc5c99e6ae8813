import numpy as np
import keras

# A fully deterministic run: fixed weights, fixed data, plain SGD, no shuffling.
X = np.array([[[np.sin(0.3 * (i + t))] for t in range(6)] for i in range(48)], dtype="float32")
y = np.array([np.sin(0.3 * (i + 6)) for i in range(48)], dtype="float32")

model = keras.Sequential([
    keras.Input(shape=(6, 1)),
    keras.layers.SimpleRNN(4),
    keras.layers.Dense(1),
])
rng = np.random.default_rng(1234)
model.set_weights([(0.4 * rng.standard_normal(w.shape)).astype("float32")
                   for w in model.get_weights()])
model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="mse", metrics=["mae"])
history = model.fit(X, y, epochs=5, batch_size=16, shuffle=False, verbose=0)
print("loss:", [round(v, 6) for v in history.history["loss"]])
print("mae:", [round(v, 6) for v in history.history["mae"]])
print("evaluate:", [round(v, 6) for v in model.evaluate(X, y, verbose=0)])
print("predictions:", np.round(model.predict(X[:4], verbose=0).ravel(), 6))
print("bias after training:", np.round(model.layers[0].get_weights()[2], 6))
