import numpy as np
import keras
from keras import layers

# One encoder, two heads: the next value (regression) and whether it goes up (classification).
rng = np.random.default_rng(6)
series = np.cumsum(rng.normal(0, 1, size=(500, 16)), axis=1).astype("float32")
x = series[:, :15, None]
next_value = series[:, 15:16]
goes_up = (series[:, 15] > series[:, 14]).astype("float32")[:, None]

inputs = keras.Input(shape=(15, 1), name="history")
encoded = layers.SimpleRNN(24, name="encoder")(inputs)
value = layers.Dense(1, name="value")(encoded)
direction = layers.Dense(1, activation="sigmoid", name="direction")(encoded)
model = keras.Model(inputs=inputs, outputs=[value, direction])
model.compile(optimizer="adam",
              loss={"value": "mse", "direction": "binary_crossentropy"},
              loss_weights={"value": 1.0, "direction": 0.5})
history = model.fit(x, {"value": next_value, "direction": goes_up}, epochs=3, batch_size=50,
                    validation_split=0.2, verbose=0)
print("history keys:", sorted(history.history))
value_pred, direction_pred = model.predict(x[:3], verbose=0)
print("shapes:", value_pred.shape, direction_pred.shape)
results = model.evaluate(x, [next_value, goes_up], verbose=0)
print("evaluate returns", len(results), "numbers")
