import numpy as np
import keras
from keras.models import Sequential
from keras.layers import SimpleRNN, Dense, RepeatVector, TimeDistributed

# Stock-style multi-step forecasting: 20 past prices -> the next 5, encoder-decoder.
rng = np.random.default_rng(0)
prices = np.cumsum(rng.normal(0, 1, 600)) + 100
prices = (prices - prices.mean()) / prices.std()

n_in, n_out = 20, 5
X, Y = [], []
for i in range(len(prices) - n_in - n_out):
    X.append(prices[i:i + n_in])
    Y.append(prices[i + n_in:i + n_in + n_out])
X = np.array(X).reshape(-1, n_in, 1)
Y = np.array(Y).reshape(-1, n_out, 1)
split = int(0.8 * len(X))
X_train, X_test, Y_train, Y_test = X[:split], X[split:], Y[:split], Y[split:]

model = Sequential([
    SimpleRNN(32, activation="tanh", input_shape=(n_in, 1)),
    RepeatVector(n_out),
    SimpleRNN(32, activation="tanh", return_sequences=True),
    TimeDistributed(Dense(1)),
])
model.compile(optimizer="adam", loss="mse")
model.summary()
history = model.fit(X_train, Y_train, epochs=5, batch_size=32,
                    validation_data=(X_test, Y_test), verbose=0)
print("val_loss per epoch:", np.round(history.history["val_loss"], 4))
forecast = model.predict(X_test[-1:], verbose=0)
print("forecast shape:", forecast.shape)
print("next 5 steps:", forecast.ravel())
