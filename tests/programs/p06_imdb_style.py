import numpy as np
import keras
from keras.preprocessing.sequence import pad_sequences

rng = np.random.default_rng(2)
vocab = 500
docs = [rng.integers(1, vocab, size=rng.integers(5, 40)).tolist() for _ in range(300)]
labels = np.array([1 if sum(d) % 2 else 0 for d in docs])
X = pad_sequences(docs, maxlen=30)
model = keras.Sequential([
    keras.layers.Embedding(input_dim=vocab, output_dim=16),
    keras.layers.SimpleRNN(16),
    keras.layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])
model.fit(X, labels, epochs=2, batch_size=64, validation_split=0.2, verbose=0)
print(model.predict(X[:3], verbose=0).ravel())
