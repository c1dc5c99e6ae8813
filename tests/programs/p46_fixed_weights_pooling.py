import numpy as np
import keras
from keras import layers

# Deterministic: max- and average-pooled SimpleRNN sequences side by side, fixed weights.
inputs = keras.Input(shape=(7, 3))
seq = layers.SimpleRNN(4, return_sequences=True, activation="relu", name="rnn")(inputs)
pooled = layers.Concatenate()([layers.GlobalMaxPooling1D()(seq),
                               layers.GlobalAveragePooling1D()(seq)])
outputs = layers.Dense(1, activation="sigmoid")(pooled)
model = keras.Model(inputs, outputs)
rng = np.random.default_rng(23)
model.set_weights([(0.7 * rng.standard_normal(w.shape)).astype("float32")
                   for w in model.get_weights()])
x = np.tanh(np.arange(50 * 7 * 3, dtype="float32").reshape(50, 7, 3) % 11 - 5.0)
y = (x[:, :, 1].mean(axis=1) > x[:, :, 0].mean(axis=1)).astype("float32")

model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1, momentum=0.5),
              loss="binary_crossentropy", metrics=["accuracy"])
history = model.fit(x, y, epochs=4, batch_size=10, shuffle=False, verbose=0)
print("loss", [round(v, 6) for v in history.history["loss"]])
print("accuracy", [round(v, 6) for v in history.history["accuracy"]])
print("pooled:", np.round(keras.Model(inputs, pooled).predict(x[:2], verbose=0), 6).tolist())
print("kernel:", np.round(model.get_layer("rnn").get_weights()[0], 6).tolist())
