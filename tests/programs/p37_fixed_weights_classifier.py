import numpy as np
import keras

# Deterministic text classifier: Embedding + SimpleRNN + softmax, fixed weights,
# a hand-written loop over train_on_batch, then evaluate and predict.
vocab, length, classes = 20, 6, 3
tokens = (np.arange(40 * length).reshape(40, length) * 7) % vocab
labels = tokens.sum(axis=1) % classes

model = keras.Sequential([
    keras.Input(shape=(length,)),
    keras.layers.Embedding(vocab, 4),
    keras.layers.SimpleRNN(5),
    keras.layers.Dense(classes, activation="softmax"),
])
rng = np.random.default_rng(5)
model.set_weights([(0.3 * rng.standard_normal(w.shape)).astype("float32")
                   for w in model.get_weights()])
model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.01),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
for epoch in range(3):
    for start in range(0, 40, 10):
        loss, acc = model.train_on_batch(tokens[start:start + 10], labels[start:start + 10])
    print("epoch", epoch, "last batch loss", round(float(loss), 6), "acc", round(float(acc), 6))
print("evaluate:", [round(v, 6) for v in model.evaluate(tokens, labels, verbose=0)])
print("probabilities:", np.round(model.predict(tokens[:3], verbose=0), 6).tolist())
print("classes:", np.argmax(model.predict(tokens[:8], verbose=0), axis=-1).tolist())
