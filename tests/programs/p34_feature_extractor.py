import numpy as np
import keras
from keras import layers

# The keras.io "feature extraction" pattern: a model that returns every layer's output.
rng = np.random.default_rng(8)
x = rng.normal(size=(200, 9, 3)).astype("float32")
labels = (x[:, :, 1].sum(axis=1) > 0).astype("int32")

model = keras.Sequential([
    keras.Input(shape=(9, 3)),
    layers.SimpleRNN(10, return_sequences=True, name="rnn_1"),
    layers.SimpleRNN(10, name="rnn_2"),
    layers.Dense(2, activation="softmax", name="classifier"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x, labels, epochs=3, batch_size=25, verbose=0)

extractor = keras.Model(inputs=model.inputs, outputs=[layer.output for layer in model.layers])
features = extractor(x[:4])
for layer, f in zip(model.layers, features):
    print(layer.name, np.asarray(f).shape)
last_state = keras.Model(inputs=model.inputs, outputs=model.get_layer("rnn_2").output)
codes = last_state.predict(x, verbose=0)
print("codes:", codes.shape, "finite:", bool(np.isfinite(codes).all()))
# the classifier on top of the codes gives the model's own predictions
w, b = model.get_layer("classifier").get_weights()
logits = codes @ w + b
probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
print("head by hand matches:", np.allclose(probs, model.predict(x, verbose=0), atol=1e-5))
# training the big model moves the shared layers of the small one
model.fit(x, labels, epochs=1, batch_size=25, verbose=0)
print("sub-model follows training:", not np.allclose(codes, last_state.predict(x, verbose=0)))
