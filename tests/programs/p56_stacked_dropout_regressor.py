import numpy as np
from keras.models import Sequential
from keras.layers import Dense, SimpleRNN, Dropout

# The "stock price" recipe: 60 past prices -> the next one, four stacked SimpleRNNs with
# Dropout between them, min-max scaling by hand and its inverse for the report.
rng = np.random.default_rng(2024)
prices = 100 + np.cumsum(rng.normal(0.1, 1.5, size=700))
low, high = prices.min(), prices.max()
scaled = (prices - low) / (high - low)

X_train, y_train = [], []
for i in range(60, 560):
    X_train.append(scaled[i - 60:i])
    y_train.append(scaled[i])
X_train, y_train = np.array(X_train), np.array(y_train)
X_train = np.reshape(X_train, (X_train.shape[0], X_train.shape[1], 1))

regressor = Sequential()
regressor.add(SimpleRNN(units=32, activation="tanh", return_sequences=True,
                        input_shape=(X_train.shape[1], 1)))
regressor.add(Dropout(0.2))
regressor.add(SimpleRNN(units=32, activation="tanh", return_sequences=True))
regressor.add(Dropout(0.2))
regressor.add(SimpleRNN(units=32, activation="tanh", return_sequences=True))
regressor.add(Dropout(0.2))
regressor.add(SimpleRNN(units=32))
regressor.add(Dropout(0.2))
regressor.add(Dense(units=1))
regressor.compile(optimizer="adam", loss="mean_squared_error")
regressor.fit(X_train, y_train, epochs=2, batch_size=32, verbose=0)

inputs = scaled[len(scaled) - 140 - 60:]
X_test = np.array([inputs[i - 60:i] for i in range(60, len(inputs))])[..., np.newaxis]
predicted = regressor.predict(X_test, verbose=0) * (high - low) + low
print("predicted prices:", predicted.shape, "finite:", bool(np.isfinite(predicted).all()))
