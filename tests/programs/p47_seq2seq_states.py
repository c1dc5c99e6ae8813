import numpy as np
import keras
from keras import layers

# Character seq2seq (the keras.io recipe with SimpleRNN): reverse short digit strings.
# Training uses teacher forcing; inference rebuilds an encoder and a one-step decoder
# from the trained layers, which share their weights with the training model.
digits = "0123456789"
start, end = "\t", "\n"
tokens = digits + start + end
index = {c: i for i, c in enumerate(tokens)}
n_tokens, max_len = len(tokens), 5

rng = np.random.default_rng(0)
inputs_text = ["".join(rng.choice(list(digits), size=rng.integers(2, max_len))) for _ in range(600)]
targets_text = [start + s[::-1] + end for s in inputs_text]

enc_in = np.zeros((600, max_len, n_tokens), "float32")
dec_in = np.zeros((600, max_len + 2, n_tokens), "float32")
dec_out = np.zeros((600, max_len + 2, n_tokens), "float32")
for i, (a, b) in enumerate(zip(inputs_text, targets_text)):
    for t, c in enumerate(a):
        enc_in[i, t, index[c]] = 1
    for t, c in enumerate(b):
        dec_in[i, t, index[c]] = 1
        if t > 0:
            dec_out[i, t - 1, index[c]] = 1

latent = 64
encoder_inputs = keras.Input(shape=(None, n_tokens))
_, encoder_state = layers.SimpleRNN(latent, return_state=True)(encoder_inputs)
decoder_inputs = keras.Input(shape=(None, n_tokens))
decoder_rnn = layers.SimpleRNN(latent, return_sequences=True, return_state=True)
decoder_outputs, _ = decoder_rnn(decoder_inputs, initial_state=[encoder_state])
decoder_dense = layers.Dense(n_tokens, activation="softmax")
decoder_outputs = decoder_dense(decoder_outputs)

model = keras.Model([encoder_inputs, decoder_inputs], decoder_outputs)
model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
model.fit([enc_in, dec_in], dec_out, batch_size=64, epochs=6, validation_split=0.2, verbose=0)

encoder_model = keras.Model(encoder_inputs, encoder_state)
state_input = keras.Input(shape=(latent,))
step_outputs, step_state = decoder_rnn(decoder_inputs, initial_state=[state_input])
decoder_model = keras.Model([decoder_inputs, state_input],
                            [decoder_dense(step_outputs), step_state])


def decode(sequence):
    state = encoder_model.predict(sequence, verbose=0)
    target = np.zeros((1, 1, n_tokens), "float32")
    target[0, 0, index[start]] = 1
    decoded = ""
    while True:
        probs, state = decoder_model.predict([target, state], verbose=0)
        char = tokens[int(np.argmax(probs[0, -1]))]
        if char == end or len(decoded) > max_len:
            return decoded
        decoded += char
        target = np.zeros((1, 1, n_tokens), "float32")
        target[0, 0, index[char]] = 1


for i in range(3):
    print(repr(inputs_text[i]), "->", repr(decode(enc_in[i:i + 1])))
