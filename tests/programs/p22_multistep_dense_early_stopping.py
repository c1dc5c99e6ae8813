import numpy as np
import keras
from keras import layers

# Multi-output forecaster: stacked SimpleRNNs, Dense(n_out), EarlyStopping on val_loss.
keras.utils.set_random_seed(1)
t = np.linspace(0, 60, 1500)
series = (np.sin(t) + 0.5 * np.sin(3 * t) + 0.1 * np.random.randn(len(t))).astype("float32")

window, horizon = 24, 6
X = np.array([series[i:i + window] for i in range(len(series) - window - horizon)])
y = np.array([series[i + window:i + window + horizon]
              for i in range(len(series) - window - horizon)])
X = X[..., np.newaxis]

model = keras.Sequential([
    layers.Input(shape=(window, 1)),
    layers.SimpleRNN(40, return_sequences=True),
    layers.SimpleRNN(20),
    layers.Dense(horizon),
])
model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.005), loss="mse", metrics=["mae"])
early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
history = model.fit(X, y, epochs=12, batch_size=64, validation_split=0.2, callbacks=[early],
                    verbose=0)
print("epochs run:", len(history.history["loss"]))
print("best val_loss: %.4f" % min(history.history["val_loss"]))
print("last mae: %.4f" % history.history["mae"][-1])
loss, mae = model.evaluate(X[-100:], y[-100:], verbose=0)
print(f"test loss {loss:.4f}, test mae {mae:.4f}")
