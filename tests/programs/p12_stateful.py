import numpy as np
import keras

batch = 4
X = np.random.rand(batch * 10, 5, 1).astype("float32")
y = X.sum(axis=(1, 2))
model = keras.Sequential([
    keras.Input(batch_shape=(batch, 5, 1)),
    keras.layers.SimpleRNN(8, stateful=True),
    keras.layers.Dense(1),
])
model.compile(optimizer="adam", loss="mse")
for epoch in range(2):
    model.fit(X, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    model.layers[0].reset_states()
print(model.predict(X[:batch], batch_size=batch, verbose=0).shape)
