import numpy as np
import keras
from keras import layers, regularizers

# Deterministic run with weight decay: L2 on the recurrent kernels, L1/L2 on the head.
model = keras.Sequential([
    keras.Input(shape=(4, 3)),
    layers.SimpleRNN(5, kernel_regularizer=regularizers.l2(0.01),
                     recurrent_regularizer=regularizers.L2(0.02), name="rnn"),
    layers.Dense(1, kernel_regularizer=regularizers.L1L2(l1=0.005, l2=0.001),
                 bias_regularizer="l2", name="out"),
])
rng = np.random.default_rng(17)
model.set_weights([(0.6 * rng.standard_normal(w.shape)).astype("float32")
                   for w in model.get_weights()])
x = np.sin(np.arange(36 * 4 * 3, dtype="float32") * 0.37).reshape(36, 4, 3)
y = x[:, :, 0].sum(axis=1, keepdims=True) * 0.5

print("penalties:", [round(float(v), 6) for v in model.losses])
model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.02), loss="mse", metrics=["mse"])
print("evaluate before:", [round(v, 6) for v in model.evaluate(x, y, verbose=0)])
history = model.fit(x[:30], y[:30], validation_data=(x[30:], y[30:]), epochs=4, batch_size=10,
                    shuffle=False, verbose=0)
for key in ("loss", "mse", "val_loss", "val_mse"):
    print(key, [round(v, 6) for v in history.history[key]])
print("one more batch:", [round(v, 6) for v in model.train_on_batch(x[:10], y[:10])])
print("kernel norm:", round(float(np.square(model.get_layer("rnn").get_weights()[0]).sum()), 6))
print("penalties after:", [round(float(v), 6) for v in model.losses])
