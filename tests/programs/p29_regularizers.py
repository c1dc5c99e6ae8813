import numpy as np
import keras
from keras import layers, regularizers

# Weight decay the tutorial way: L2 on the input and recurrent kernels, L1 on the head.
keras.utils.set_random_seed(3)
X = np.random.randn(200, 10, 4).astype("float32")
y = (X[:, -3:, 0].sum(axis=1) > 0).astype("float32")

model = keras.Sequential([
    layers.Input(shape=(10, 4)),
    layers.SimpleRNN(16, kernel_regularizer=regularizers.l2(1e-3),
                     recurrent_regularizer=regularizers.l2(1e-3),
                     bias_regularizer=None),
    layers.Dense(1, activation="sigmoid", kernel_regularizer=keras.regularizers.l1(1e-4)),
])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
history = model.fit(X, y, epochs=5, batch_size=20, validation_split=0.25, verbose=0)
print("loss (with the penalty):", np.round(history.history["loss"], 4))
print("accuracy: %.3f" % history.history["accuracy"][-1])
