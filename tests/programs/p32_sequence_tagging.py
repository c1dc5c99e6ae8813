import numpy as np
import keras
from keras import layers

# Tagging every token (POS-style): Embedding -> SimpleRNN(return_sequences) -> per-step softmax.
rng = np.random.default_rng(4)
n_words, n_tags, length = 60, 4, 12
sentences = rng.integers(1, n_words, size=(400, length))
tags = sentences % n_tags           # a tag is a function of the word

inputs = keras.Input(shape=(length,), dtype="int32")
x = layers.Embedding(n_words, 16)(inputs)
x = layers.SimpleRNN(32, return_sequences=True)(x)
outputs = layers.TimeDistributed(layers.Dense(n_tags, activation="softmax"))(x)
model = keras.Model(inputs, outputs)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(sentences[:320], tags[:320], epochs=6, batch_size=32, verbose=0)
loss, acc = model.evaluate(sentences[320:], tags[320:], verbose=0)
print("token accuracy: %.3f" % acc)
pred_tags = np.argmax(model.predict(sentences[320:322], verbose=0), axis=-1)
print("predicted tags shape:", pred_tags.shape)
print("first sentence tags:", pred_tags[0], "true:", tags[320])
