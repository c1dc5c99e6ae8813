import numpy as np
import keras
from keras import layers
from keras.utils import pad_sequences

# Deterministic: post-padded token sequences, Embedding(mask_zero=True), a SimpleRNN,
# then average pooling over the kept steps only (Keras's masked mean).
docs = [[3, 7, 1], [5, 2, 8, 8, 4, 1], [9], [6, 6, 2, 3], [4, 1, 9, 2, 7, 5, 3], [8, 2]] * 5
labels = np.array([sum(d) % 2 for d in docs], dtype="float32")
x = pad_sequences(docs, maxlen=7, padding="post")

inputs = keras.Input(shape=(7,))
h = layers.Embedding(10, 4, mask_zero=True)(inputs)
h = layers.SimpleRNN(5, return_sequences=True)(h)
pooled = layers.GlobalAveragePooling1D()(h)
model = keras.Model(inputs, layers.Dense(1, activation="sigmoid")(pooled))
rng = np.random.default_rng(4)
model.set_weights([(0.6 * rng.standard_normal(w.shape)).astype("float32")
                   for w in model.get_weights()])
print("pooled:", np.round(keras.Model(inputs, pooled).predict(x[:2], verbose=0), 6).tolist())
model.compile(optimizer=keras.optimizers.RMSprop(0.01), loss="binary_crossentropy",
              metrics=["accuracy"])
history = model.fit(x, labels, epochs=3, batch_size=6, shuffle=False, verbose=0)
print("loss", [round(v, 6) for v in history.history["loss"]])
print("predict:", np.round(model.predict(x[:4], verbose=0).ravel(), 6).tolist())
