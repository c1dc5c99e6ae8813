import numpy as np
import keras
from sklearn.preprocessing import MinMaxScaler
from sklearn.model_selection import train_test_split
from sklearn.metrics import mean_squared_error, r2_score

# The common forecasting recipe with scikit-learn around the model.
rng = np.random.default_rng(42)
t = np.arange(400)
temperature = 15 + 8 * np.sin(2 * np.pi * t / 50) + rng.normal(0, 0.8, size=t.size)

scaler = MinMaxScaler(feature_range=(0, 1))
scaled = scaler.fit_transform(temperature.reshape(-1, 1))

time_steps = 12
X, y = [], []
for i in range(time_steps, len(scaled)):
    X.append(scaled[i - time_steps:i, 0])
    y.append(scaled[i, 0])
X, y = np.array(X), np.array(y)
X = np.reshape(X, (X.shape[0], X.shape[1], 1))
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, shuffle=False)

model = keras.models.Sequential()
model.add(keras.layers.SimpleRNN(units=32, activation="tanh", input_shape=(X_train.shape[1], 1)))
model.add(keras.layers.Dense(units=1))
model.compile(optimizer="adam", loss="mean_squared_error")
model.fit(X_train, y_train, epochs=8, batch_size=16, verbose=0)

predicted = scaler.inverse_transform(model.predict(X_test, verbose=0))
actual = scaler.inverse_transform(y_test.reshape(-1, 1))
rmse = np.sqrt(mean_squared_error(actual, predicted))
print("RMSE: %.3f degrees" % rmse)
print("R^2 better than a constant:", r2_score(actual, predicted) > 0)
