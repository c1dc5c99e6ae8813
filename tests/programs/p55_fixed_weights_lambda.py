import numpy as np
import keras

# Deterministic: Lambdas around a SimpleRNN (the feature axis added, the output rescaled).
model = keras.Sequential([
    keras.Input(shape=(6,)),
    keras.layers.Lambda(lambda x: keras.ops.expand_dims(x, axis=-1)),
    keras.layers.SimpleRNN(5),
    keras.layers.Dense(1),
    keras.layers.Lambda(lambda x: x * 10.0 + 1.0),
])
rng = np.random.default_rng(8)
model.set_weights([(0.5 * rng.standard_normal(w.shape)).astype("float32")
                   for w in model.get_weights()])
x = np.sin(np.arange(40 * 6, dtype="float32") * 0.3).reshape(40, 6)
y = 10.0 * x[:, -2:].sum(axis=1) + 1.0
model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.001), loss="mse")
history = model.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0)
print("loss", [round(v, 5) for v in history.history["loss"]])
print("predict:", np.round(model.predict(x[:3], verbose=0).ravel(), 5).tolist())
