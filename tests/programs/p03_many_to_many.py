import numpy as np
import keras
from keras import layers

rng = np.random.default_rng(0)
x = rng.normal(size=(200, 15, 3)).astype("float32")
y = np.cumsum(x[..., :1], axis=1)
model = keras.Sequential([
    keras.Input(shape=(15, 3)),
    layers.SimpleRNN(16, return_sequences=True),
    layers.TimeDistributed(layers.Dense(1)),
])
model.compile(optimizer="rmsprop", loss="mse", metrics=["mae"])
model.fit(x, y, epochs=3, batch_size=32, verbose=0)
print(model.predict(x[:2], verbose=0).shape)
