import numpy as np
import keras
from keras.utils import to_categorical

rng = np.random.default_rng(3)
X = rng.normal(size=(300, 8, 4)).astype("float32")
labels = np.argmax(X.mean(axis=1), axis=1)
Y = to_categorical(labels, num_classes=4)
model = keras.Sequential([keras.layers.SimpleRNN(32, input_shape=(8, 4)),
                          keras.layers.Dense(4, activation="softmax")])
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
model.fit(X, Y, epochs=5, batch_size=32, verbose=0)
pred = np.argmax(model.predict(X, verbose=0), axis=1)
print((pred == labels).mean())
