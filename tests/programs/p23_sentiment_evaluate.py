import numpy as np
from tensorflow.keras.preprocessing.sequence import pad_sequences
from tensorflow.keras.models import Sequential
from tensorflow.keras.layers import Embedding, SimpleRNN, Dense

# IMDB-style sentiment: reviews are lists of word ids; positive ones use more "good" words.
rng = np.random.default_rng(5)
max_features, maxlen = 1000, 40
good_words, bad_words = np.arange(1, 50), np.arange(50, 100)


def review(positive):
    length = rng.integers(10, 60)
    words = rng.integers(100, max_features, size=length)
    marks = rng.choice(good_words if positive else bad_words, size=length // 4)
    words[rng.choice(length, size=len(marks), replace=False)] = marks
    return words.tolist()


labels = rng.integers(0, 2, size=600)
reviews = [review(bool(label)) for label in labels]
x_train = pad_sequences(reviews[:500], maxlen=maxlen)
x_test = pad_sequences(reviews[500:], maxlen=maxlen)
y_train, y_test = labels[:500], labels[500:]
print("x_train shape:", x_train.shape)

model = Sequential()
model.add(Embedding(max_features, 32))
model.add(SimpleRNN(32))
model.add(Dense(1, activation="sigmoid"))
model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
history = model.fit(x_train, y_train, epochs=4, batch_size=32, validation_split=0.2, verbose=0)
print("val_accuracy:", [round(a, 3) for a in history.history["val_accuracy"]])
score, acc = model.evaluate(x_test, y_test, batch_size=32, verbose=0)
print("Test score:", round(score, 4))
print("Test accuracy:", round(acc, 4))
pred = (model.predict(x_test[:8], verbose=0) > 0.5).astype("int32").ravel()
print("predicted:", pred, "true:", y_test[:8])
