import numpy as np
import keras
from keras import layers

# Two named inputs (a sequence and static features) fed as dicts; two named outputs.
rng = np.random.default_rng(17)
n = 256
sequence = rng.normal(size=(n, 10, 2)).astype("float32")
static = rng.normal(size=(n, 3)).astype("float32")
amount = sequence[:, :, 0].sum(axis=1, keepdims=True) + static[:, :1]
is_large = (amount > 0).astype("float32")

seq_in = keras.Input(shape=(10, 2), name="sequence")
static_in = keras.Input(shape=(3,), name="static")
h = layers.SimpleRNN(12, name="encoder")(seq_in)
joined = layers.concatenate([h, layers.Dense(4, activation="relu")(static_in)])
amount_out = layers.Dense(1, name="amount")(joined)
flag_out = layers.Dense(1, activation="sigmoid", name="flag")(joined)
model = keras.Model(inputs={"sequence": seq_in, "static": static_in},
                    outputs={"amount": amount_out, "flag": flag_out})
model.compile(optimizer="adam", loss={"amount": "mse", "flag": "binary_crossentropy"})
model.fit({"sequence": sequence, "static": static}, {"amount": amount, "flag": is_large},
          epochs=3, batch_size=32, verbose=0)
out = model.predict({"sequence": sequence[:4], "static": static[:4]}, verbose=0)
print("outputs:", sorted(out), out["amount"].shape, out["flag"].shape)
print("losses:", [round(v, 3) >= 0 for v in model.evaluate(
    {"sequence": sequence, "static": static}, {"amount": amount, "flag": is_large}, verbose=0)])
