import numpy as np
import keras
from keras.models import Sequential
from keras.layers import SimpleRNN, Dense

# Character-level language model: one-hot windows of text -> next character.
text = ("the quick brown fox jumps over the lazy dog. " * 12).lower()
chars = sorted(set(text))
char_to_idx = {c: i for i, c in enumerate(chars)}
idx_to_char = {i: c for i, c in enumerate(chars)}
seq_length = 10

sentences, next_chars = [], []
for i in range(0, len(text) - seq_length, 3):
    sentences.append(text[i:i + seq_length])
    next_chars.append(text[i + seq_length])
print("number of sequences:", len(sentences))

X = np.zeros((len(sentences), seq_length, len(chars)), dtype=np.float32)
y = np.zeros((len(sentences), len(chars)), dtype=np.float32)
for i, sentence in enumerate(sentences):
    for t, ch in enumerate(sentence):
        X[i, t, char_to_idx[ch]] = 1
    y[i, char_to_idx[next_chars[i]]] = 1

model = Sequential()
model.add(SimpleRNN(64, input_shape=(seq_length, len(chars))))
model.add(Dense(len(chars), activation="softmax"))
model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.RMSprop(learning_rate=0.01))
model.fit(X, y, batch_size=32, epochs=8, verbose=0)


def sample(preds, temperature=1.0):
    preds = np.asarray(preds).astype("float64")
    preds = np.log(preds + 1e-9) / temperature
    exp_preds = np.exp(preds)
    preds = exp_preds / np.sum(exp_preds)
    return np.argmax(np.random.multinomial(1, preds, 1))


seed = text[:seq_length]
generated = seed
for _ in range(40):
    x_pred = np.zeros((1, seq_length, len(chars)))
    for t, ch in enumerate(generated[-seq_length:]):
        x_pred[0, t, char_to_idx[ch]] = 1.0
    preds = model.predict(x_pred, verbose=0)[0]
    generated += idx_to_char[sample(preds, 0.5)]
print("generated:", generated)
