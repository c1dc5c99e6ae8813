import numpy as np
import keras


# The book-style series chapter: a batch of noisy sine mixtures, naive and linear
# baselines, a deep RNN, and a sequence-to-sequence model scored on its last step.
def generate_time_series(batch_size, n_steps):
    freq1, freq2, offsets1, offsets2 = np.random.rand(4, batch_size, 1)
    time = np.linspace(0, 1, n_steps)
    series = 0.5 * np.sin((time - offsets1) * (freq1 * 10 + 10))
    series += 0.2 * np.sin((time - offsets2) * (freq2 * 20 + 20))
    series += 0.1 * (np.random.rand(batch_size, n_steps) - 0.5)
    return series[..., np.newaxis].astype(np.float32)


np.random.seed(42)
n_steps = 30
series = generate_time_series(1200, n_steps + 10)
X_train, y_train = series[:900, :n_steps], series[:900, -10]
X_valid, y_valid = series[900:1100, :n_steps], series[900:1100, -10]

y_pred = X_valid[:, -1]
print("naive forecast mse: %.4f" % np.mean(keras.losses.mean_squared_error(y_valid, y_pred)))

linear = keras.models.Sequential([
    keras.layers.Flatten(input_shape=[n_steps, 1]),
    keras.layers.Dense(1),
])
linear.compile(loss="mse", optimizer="adam")
linear.fit(X_train, y_train, epochs=5, validation_data=(X_valid, y_valid), verbose=0)
print("linear model evaluated:", linear.evaluate(X_valid, y_valid, verbose=0) > 0)

deep = keras.models.Sequential([
    keras.layers.SimpleRNN(20, return_sequences=True, input_shape=[None, 1]),
    keras.layers.SimpleRNN(20),
    keras.layers.Dense(1),
])
deep.compile(loss="mse", optimizer="adam")
deep.fit(X_train, y_train, epochs=3, validation_data=(X_valid, y_valid), verbose=0)
print("deep RNN evaluated:", deep.evaluate(X_valid, y_valid, verbose=0) > 0)

# sequence to sequence: at every step, predict the next 10 values
Y = np.empty((1200, n_steps, 10), dtype=np.float32)
for step_ahead in range(1, 10 + 1):
    Y[..., step_ahead - 1] = series[..., step_ahead:step_ahead + n_steps, 0]
Y_train, Y_valid = Y[:900], Y[900:1100]


def last_time_step_mse(Y_true, Y_pred):
    return keras.metrics.mean_squared_error(Y_true[:, -1], Y_pred[:, -1])


seq2seq = keras.models.Sequential([
    keras.layers.SimpleRNN(20, return_sequences=True, input_shape=[None, 1]),
    keras.layers.SimpleRNN(20, return_sequences=True),
    keras.layers.TimeDistributed(keras.layers.Dense(10)),
])
seq2seq.compile(loss="mse", optimizer=keras.optimizers.Adam(learning_rate=0.01),
                metrics=[last_time_step_mse])
history = seq2seq.fit(X_train, Y_train, epochs=3, validation_data=(X_valid, Y_valid), verbose=0)
print("metric logged:", sorted(history.history))
print("forecast shape:", seq2seq.predict(X_valid[:1], verbose=0)[:, -1].shape)
