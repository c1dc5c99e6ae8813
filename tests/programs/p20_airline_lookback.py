import math
import numpy as np
import keras
from keras.models import Sequential
from keras.layers import Dense, SimpleRNN

# Monthly-passengers-style series: trend + seasonality, scaled to [0, 1] by hand.
np.random.seed(7)
months = np.arange(144)
passengers = 110 + 2.2 * months + 40 * np.sin(2 * np.pi * months / 12) + np.random.normal(0, 5, 144)
dataset = passengers.reshape(-1, 1).astype("float32")

data_min, data_max = dataset.min(axis=0), dataset.max(axis=0)
scaled = (dataset - data_min) / (data_max - data_min)

train_size = int(len(scaled) * 0.67)
train, test = scaled[:train_size], scaled[train_size:]


def create_dataset(data, look_back=1):
    data_x, data_y = [], []
    for i in range(len(data) - look_back - 1):
        data_x.append(data[i:(i + look_back), 0])
        data_y.append(data[i + look_back, 0])
    return np.array(data_x), np.array(data_y)


look_back = 3
train_x, train_y = create_dataset(train, look_back)
test_x, test_y = create_dataset(test, look_back)
# [samples, time steps, features] with the window as features (as the classic tutorial does)
train_x = np.reshape(train_x, (train_x.shape[0], 1, train_x.shape[1]))
test_x = np.reshape(test_x, (test_x.shape[0], 1, test_x.shape[1]))

model = Sequential()
model.add(SimpleRNN(4, input_shape=(1, look_back)))
model.add(Dense(1))
model.compile(loss="mean_squared_error", optimizer="adam")
model.fit(train_x, train_y, epochs=20, batch_size=4, verbose=2)

train_predict = model.predict(train_x)
test_predict = model.predict(test_x)


def inverse(values):
    return values * (data_max - data_min) + data_min


train_score = math.sqrt(np.mean((inverse(train_y.reshape(-1, 1)) - inverse(train_predict)) ** 2))
test_score = math.sqrt(np.mean((inverse(test_y.reshape(-1, 1)) - inverse(test_predict)) ** 2))
print("Train Score: %.2f RMSE" % train_score)
print("Test Score: %.2f RMSE" % test_score)
