import numpy as np
from keras.models import Sequential
from keras.layers import SimpleRNN, Dense
from keras.callbacks import EarlyStopping

t = np.arange(0, 60, 0.1)
series = np.sin(t).astype("float32")
window = 20
X = np.array([series[i:i + window] for i in range(len(series) - window)])[..., None]
y = series[window:]
model = Sequential()
model.add(SimpleRNN(32, activation="tanh", input_shape=(window, 1)))
model.add(Dense(1))
model.compile(loss="mean_squared_error", optimizer="adam")
history = model.fit(X, y, epochs=5, batch_size=16, validation_split=0.2, verbose=2,
                    callbacks=[EarlyStopping(monitor="val_loss", patience=3,
                                             restore_best_weights=True)])
print(history.history["val_loss"][-1])
print(model.evaluate(X, y, verbose=0))
