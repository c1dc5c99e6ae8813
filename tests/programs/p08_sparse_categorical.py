import numpy as np
import keras

rng = np.random.default_rng(4)
X = rng.normal(size=(256, 6, 3)).astype("float32")
y = np.argmax(X[:, -1, :], axis=1)
model = keras.Sequential([keras.Input((6, 3)), keras.layers.SimpleRNN(24),
                          keras.layers.Dense(3)])
model.compile(optimizer="adam",
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["sparse_categorical_accuracy"])
history = model.fit(X, y, epochs=4, batch_size=32, verbose=0)
print(history.history)
