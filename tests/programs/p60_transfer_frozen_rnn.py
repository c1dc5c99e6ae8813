import numpy as np
import keras
from keras import layers

# Transfer learning: train a SimpleRNN regressor on one task, freeze its recurrent
# encoder, put a new classification head on the encoder's output and train only the
# head; then unfreeze and fine-tune everything with a small learning rate (compile again
# after each change of `trainable`, as the Keras guide says).  Fixed weights, no shuffling.
rng = np.random.default_rng(7)
x = rng.standard_normal((48, 6, 2)).astype("float32")
y_sum = (0.3 * x.sum(axis=(1, 2)))[:, None].astype("float32")
y_sign = (x[:, -3:, 0].sum(axis=1) > 0).astype("float32")

inputs = keras.Input(shape=(6, 2))
features = layers.SimpleRNN(5, name="encoder")(inputs)
regressor = keras.Model(inputs, layers.Dense(1, name="regressor")(features))
regressor.set_weights([(0.5 * rng.standard_normal(w.shape)).astype("float32")
                       for w in regressor.get_weights()])
regressor.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
history = regressor.fit(x, y_sum, epochs=3, batch_size=8, shuffle=False, verbose=0)
print("pretrain loss", [round(v, 5) for v in history.history["loss"]])

encoder = regressor.get_layer("encoder")
encoder.trainable = False
head = layers.Dense(1, activation="sigmoid", name="head")
classifier = keras.Model(inputs, head(features))
head.set_weights([(0.5 * rng.standard_normal(w.shape)).astype("float32")
                  for w in head.get_weights()])
print("trainable weights:", [tuple(w.shape) for w in classifier.trainable_weights])
print("non-trainable weights:", [tuple(w.shape) for w in classifier.non_trainable_weights])
before = [w.copy() for w in encoder.get_weights()]
classifier.compile(optimizer=keras.optimizers.AdamW(0.05, weight_decay=0.01, global_clipnorm=1.0),
                   loss="binary_crossentropy", metrics=["accuracy"])
history = classifier.fit(x, y_sign, epochs=4, batch_size=8, shuffle=False, verbose=0)
print("head loss", [round(v, 5) for v in history.history["loss"]])
print("encoder unchanged:", all(np.array_equal(a, b) for a, b in zip(before, encoder.get_weights())))

encoder.trainable = True
classifier.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy",
                   metrics=["accuracy"])
history = classifier.fit(x, y_sign, epochs=2, batch_size=8, shuffle=False, verbose=0)
print("fine-tune loss", [round(v, 5) for v in history.history["loss"]])
print("encoder moved:", not all(np.array_equal(a, b)
                                for a, b in zip(before, encoder.get_weights())))
print("predict:", np.round(classifier.predict(x[:4], verbose=0).ravel(), 5).tolist())
