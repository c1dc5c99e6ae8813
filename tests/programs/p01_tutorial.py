import numpy as np
import keras

X = np.array([[[i / 10], [(i + 1) / 10], [(i + 2) / 10]] for i in range(100)], dtype="float32")
Y = np.array([(i + 3) / 10 for i in range(100)], dtype="float32")
model = keras.Sequential([keras.layers.SimpleRNN(units=20, input_shape=[3, 1]),
                          keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
model.summary()
model.fit(X, Y, epochs=30, verbose=0)
print(model.predict(np.array([[[8.0], [8.1], [8.2]]]), verbose=0))
