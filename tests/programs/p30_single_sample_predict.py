import numpy as np
import keras

# Predicting one sequence at a time, the ways tutorials do it.
data = np.array([i / 100 for i in range(130)], dtype="float32")
n_steps = 5
X = np.array([data[i:i + n_steps] for i in range(len(data) - n_steps)]).reshape(-1, n_steps, 1)
y = np.array([data[i + n_steps] for i in range(len(data) - n_steps)])

model = keras.Sequential()
model.add(keras.layers.SimpleRNN(50, activation="relu", input_shape=(n_steps, 1)))
model.add(keras.layers.Dense(1))
model.compile(optimizer="adam", loss="mse")
model.fit(X, y, epochs=30, verbose=0)

x_input = np.array([0.70, 0.71, 0.72, 0.73, 0.74])
x_input = x_input.reshape((1, n_steps, 1))
yhat = model.predict(x_input, verbose=0)
print("next value:", yhat[0][0])
print("with np.newaxis:", model.predict(X[10][np.newaxis, ...], verbose=0).shape)
print("with expand_dims:", model.predict(np.expand_dims(X[10], axis=0), verbose=0).shape)
direct = np.asarray(model(X[:2]))
print("model(x) agrees with predict:", np.allclose(direct, model.predict(X[:2], verbose=0),
                                                   atol=1e-5))
# walk forward: feed each prediction back in
window = list(data[-n_steps:])
for _ in range(3):
    nxt = float(model.predict(np.array(window[-n_steps:]).reshape(1, n_steps, 1), verbose=0)[0, 0])
    window.append(nxt)
print("rolled forecast:", np.round(window[-3:], 3))
