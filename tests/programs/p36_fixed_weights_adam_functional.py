import numpy as np
import keras
from keras import layers

# Deterministic functional model: fixed weights, Adam, validation data, no shuffling.
inputs = keras.Input(shape=(5, 2), name="series")
seq = layers.SimpleRNN(6, return_sequences=True, name="rnn_seq")(inputs)
last = layers.SimpleRNN(3, activation="relu", name="rnn_last")(seq)
outputs = layers.Dense(2, name="head")(last)
model = keras.Model(inputs=inputs, outputs=outputs)

rng = np.random.default_rng(99)
model.set_weights([(0.5 * rng.standard_normal(w.shape)).astype("float32")
                   for w in model.get_weights()])
x = np.cos(np.arange(60 * 5 * 2, dtype="float32") / 7.0).reshape(60, 5, 2)
y = np.stack([x[:, :, 0].mean(axis=1), x[:, :, 1].max(axis=1)], axis=1)

model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse", metrics=["mae"])
history = model.fit(x[:48], y[:48], validation_data=(x[48:], y[48:]), epochs=4,
                    batch_size=12, shuffle=False, verbose=0)
for key in ("loss", "mae", "val_loss", "val_mae"):
    print(key, [round(v, 6) for v in history.history[key]])
print("predict:", np.round(model.predict(x[48:50], verbose=0), 6).tolist())
hidden = keras.Model(model.input, model.get_layer("rnn_last").output)
print("hidden:", np.round(hidden.predict(x[:2], verbose=0), 6).tolist())
