import numpy as np
import keras
from keras import layers

# The "RNN layer + cell" form from the guide on recurrent layers.
rng = np.random.default_rng(14)
x = rng.normal(size=(200, 8, 3)).astype("float32")
y = np.cumsum(x[:, :, 0], axis=1)[:, :, None]        # a running sum at every step

cell = layers.SimpleRNNCell(16, activation="tanh")
model = keras.Sequential([
    keras.Input(shape=(8, 3)),
    layers.RNN(cell, return_sequences=True),
    layers.TimeDistributed(layers.Dense(1)),
])
model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
history = model.fit(x, y, epochs=5, batch_size=20, verbose=0)
print("layer names:", [layer.name for layer in model.layers])
print("cell units:", model.layers[0].cell.units)
print("loss went down:", history.history["loss"][-1] < history.history["loss"][0])
print("output shape:", model.predict(x[:2], verbose=0).shape)
