import numpy as np
import keras
from keras import layers

# Word-piece-free toy language model with an Embedding and greedy decoding.
corpus = "hello world. hello there. hello keras. "
vocab = sorted(set(corpus))
stoi = {ch: i for i, ch in enumerate(vocab)}
itos = np.array(vocab)
encoded = np.array([stoi[c] for c in corpus * 6])

window = 8
X = np.stack([encoded[i:i + window] for i in range(len(encoded) - window)])
y = encoded[window:]

model = keras.Sequential([
    keras.Input(shape=(window,)),
    layers.Embedding(input_dim=len(vocab), output_dim=8),
    layers.SimpleRNN(48),
    layers.Dense(len(vocab), activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(X, y, epochs=15, batch_size=16, verbose=0)
print("final accuracy: %.3f" % history.history["accuracy"][-1])

context = list(encoded[:window])
out = []
for _ in range(20):
    probs = model.predict(np.array([context[-window:]]), verbose=0)
    next_id = int(np.argmax(probs, axis=-1)[0])
    out.append(itos[next_id])
    context.append(next_id)
print("continuation:", "".join(out))
