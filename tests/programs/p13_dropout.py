import numpy as np
import keras
from keras import layers

X = np.random.rand(256, 20, 3).astype("float32")
y = (X[:, :, 0].mean(axis=1) > 0.5).astype("float32")
model = keras.Sequential([
    keras.Input(shape=(20, 3)),
    layers.SimpleRNN(32, dropout=0.2, recurrent_dropout=0.2, return_sequences=True),
    layers.Dropout(0.3),
    layers.SimpleRNN(16),
    layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
model.fit(X, y, epochs=2, batch_size=32, verbose=0)
print(model.evaluate(X, y, verbose=0))
