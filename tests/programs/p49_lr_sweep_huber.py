import numpy as np
import keras

# The course-style learning-rate sweep: grow the rate every epoch, watch the loss,
# then retrain with a good rate; Huber loss, SGD with momentum.
time = np.arange(4 * 365 + 1, dtype="float32")
series = 10 + time * 0.05 + 20 * np.sin(time / 20.0) + np.random.default_rng(1).normal(0, 2, time.size)
series = series.astype("float32")
window_size = 20
windows = np.lib.stride_tricks.sliding_window_view(series, window_size + 1)
X, y = windows[:, :-1, None] / 50.0, windows[:, -1] / 50.0


def build(seed=0):
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    return keras.models.Sequential([
        keras.layers.Input(shape=(window_size, 1)),
        keras.layers.SimpleRNN(20, return_sequences=True),
        keras.layers.SimpleRNN(20),
        keras.layers.Dense(1),
    ])


model = build()
lr_schedule = keras.callbacks.LearningRateScheduler(lambda epoch: 1e-4 * 10 ** (epoch / 3))
model.compile(loss=keras.losses.Huber(), optimizer=keras.optimizers.SGD(momentum=0.9),
              metrics=["mae"])
history = model.fit(X, y, epochs=6, batch_size=64, callbacks=[lr_schedule], verbose=0)
rates = np.array(history.history["learning_rate"])
losses = np.array(history.history["loss"])
print("rates tried:", np.round(rates, 6))
best_rate = float(rates[np.nanargmin(losses)])
print("picked a rate from the sweep:", best_rate in rates)

model = build()
model.compile(loss=keras.losses.Huber(delta=1.0),
              optimizer=keras.optimizers.SGD(learning_rate=best_rate, momentum=0.9,
                                             nesterov=True), metrics=["mae"])
history = model.fit(X, y, epochs=4, batch_size=64, verbose=0)
print("mae decreased:", history.history["mae"][-1] <= history.history["mae"][0])
forecast = model.predict(X[-5:], verbose=0).ravel() * 50.0
print("forecast:", forecast.shape)
