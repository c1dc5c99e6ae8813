import numpy as np
import keras

# "What does a SimpleRNN compute?": fixed weights, the hidden states from a sub-model,
# and the same numbers by hand with NumPy.
model = keras.Sequential([
    keras.Input(shape=(4, 2)),
    keras.layers.SimpleRNN(3, return_sequences=True, name="rnn"),
    keras.layers.Dense(1, name="out"),
])
kernel = np.array([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]], dtype="float32")
recurrent = np.array([[0.5, 0.1, 0.0], [-0.3, 0.2, 0.4], [0.1, -0.1, 0.3]], dtype="float32")
bias = np.array([0.01, -0.02, 0.03], dtype="float32")
model.layers[0].set_weights([kernel, recurrent, bias])
model.get_layer("out").set_weights([np.array([[1.0], [-1.0], [0.5]], dtype="float32"),
                                    np.array([0.2], dtype="float32")])

W_x, W_h, b = model.layers[0].get_weights()
print("kernel shape:", W_x.shape, "recurrent kernel shape:", W_h.shape, "bias shape:", b.shape)

x = np.array([[[1.0, 0.0], [0.5, -0.5], [0.0, 1.0], [-1.0, 0.2]]], dtype="float32")
hidden_model = keras.Model(inputs=model.inputs, outputs=model.layers[0].output)
states = hidden_model.predict(x, verbose=0)
print("hidden states from the sub-model:")
print(np.round(states[0], 6))

h = np.zeros(3, dtype="float32")
by_hand = []
for t in range(x.shape[1]):
    h = np.tanh(x[0, t] @ W_x + h @ W_h + b)
    by_hand.append(h)
print("by hand matches:", np.allclose(np.array(by_hand), states[0], atol=1e-6))
print("outputs:", np.round(model.predict(x, verbose=0).ravel(), 6))
