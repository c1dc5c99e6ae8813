import numpy as np
import keras

# Loss and metric objects, an optimizer object, and reading the history dict.
keras.utils.set_random_seed(0)
keras.backend.clear_session()

x = np.random.rand(300, 12, 3).astype("float32")
y = (x[:, :, 0].mean(axis=1) - x[:, :, 2].mean(axis=1)).reshape(-1, 1)

model = keras.Sequential([
    keras.layers.Input((12, 3)),
    keras.layers.SimpleRNN(24, activation="tanh"),
    keras.layers.Dense(8, activation="relu"),
    keras.layers.Dense(1),
])
model.compile(loss=keras.losses.MeanSquaredError(),
              optimizer=keras.optimizers.Adam(learning_rate=3e-3),
              metrics=[keras.metrics.MeanAbsoluteError(), keras.metrics.RootMeanSquaredError()])
history = model.fit(x, y, validation_split=0.2, epochs=6, batch_size=30, verbose=0)
print("history keys:", sorted(history.history.keys()))
val_loss = history.history["val_loss"]
best_epoch = int(np.argmin(val_loss)) + 1
print(f"best epoch {best_epoch} with val_loss {min(val_loss):.5f}")
print("train loss went down:", history.history["loss"][-1] < history.history["loss"][0])
results = model.evaluate(x, y, verbose=0, return_dict=True)
print({k: round(float(v), 5) for k, v in results.items()})
