import numpy as np
import keras

# No input shape anywhere: the model is built by fit (or by build()), as Keras does.
model = keras.Sequential()
model.add(keras.layers.SimpleRNN(8))
model.add(keras.layers.Dense(1))
print("built before fit:", model.built)
model.compile(optimizer="adam", loss="mse")
X = np.random.rand(64, 12, 2).astype("float32")
model.fit(X, X.sum(axis=(1, 2)), epochs=2, verbose=0)
print("built after fit:", model.built, "params:", model.count_params())
model.summary()

other = keras.Sequential([keras.layers.SimpleRNN(4, return_sequences=True),
                          keras.layers.Dense(2)])
other.build(input_shape=(None, 7, 3))
print("output shape after build():", other.output_shape)
print("prediction:", other.predict(np.zeros((1, 7, 3)), verbose=0).shape)
