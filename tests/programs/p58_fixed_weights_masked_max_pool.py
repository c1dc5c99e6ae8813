import numpy as np
import keras
from keras import layers
from keras.utils import pad_sequences

# Deterministic: padded token sequences, Embedding(mask_zero=True), a SimpleRNN over the
# kept steps, then max pooling over the steps (Keras's max pooling does not use the mask).
docs = [[3, 7, 1], [5, 2, 8, 8, 4, 1], [9], [6, 6, 2, 3], [4, 1, 9, 2, 7, 5, 3], [8, 2]] * 5
labels = np.array([len(d) % 2 for d in docs], dtype="float32")
x = pad_sequences(docs, maxlen=7)

model = keras.Sequential([
    keras.Input(shape=(7,)),
    layers.Embedding(10, 4, mask_zero=True),
    layers.SimpleRNN(5, return_sequences=True),
    layers.GlobalMaxPooling1D(),
    layers.Dense(1, activation="sigmoid"),
])
rng = np.random.default_rng(3)
model.set_weights([(0.6 * rng.standard_normal(w.shape)).astype("float32")
                   for w in model.get_weights()])
model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy",
              metrics=["accuracy"])
history = model.fit(x, labels, epochs=3, batch_size=6, shuffle=False, verbose=0)
print("loss", [round(v, 6) for v in history.history["loss"]])
print("predict:", np.round(model.predict(x[:4], verbose=0).ravel(), 6).tolist())
