import numpy as np
import keras
from keras import layers
from keras.utils import pad_sequences


# A subclassed text classifier with dropout used only in training (and the head
# defined before the recurrent layer: weights follow the attribute order).
class TextRNN(keras.Model):
    def __init__(self, vocab_size, embed_dim=16, units=24):
        super().__init__()
        self.classifier = layers.Dense(1, activation="sigmoid")
        self.embedding = layers.Embedding(vocab_size, embed_dim)
        self.rnn = layers.SimpleRNN(units)
        self.dropout = layers.Dropout(0.3)

    def call(self, inputs, training=None):
        x = self.embedding(inputs)
        x = self.rnn(x)
        x = self.dropout(x, training=training)
        return self.classifier(x)


rng = np.random.default_rng(12)
vocab = 300
docs = [rng.integers(1, vocab, size=rng.integers(4, 25)).tolist() for _ in range(400)]
labels = np.array([int(np.mean(d) > vocab / 2) for d in docs])
X = pad_sequences(docs, maxlen=20, padding="post")

model = TextRNN(vocab)
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
model.fit(X, labels, epochs=3, batch_size=32, verbose=0)
loss, acc = model.evaluate(X, labels, verbose=0)
print("name:", model.name)
print("train accuracy > 0.5:", acc > 0.5)
print("weight shapes:", [w.shape for w in model.get_weights()])
print("layer names:", [layer.name for layer in model.layers])
print("probabilities:", model.predict(X[:4], verbose=0).ravel().round(3).shape)
