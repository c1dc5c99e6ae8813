import numpy as np
import keras

# The course's series model: Lambda layers add the feature axis and rescale the output.
time = np.arange(1000, dtype="float32")
series = (0.05 * time + 10 * np.sin(time / 10.0)).astype("float32")
window = 20
X = np.lib.stride_tricks.sliding_window_view(series[:-1], window)
y = series[window:]

model = keras.models.Sequential([
    keras.layers.Input(shape=(window,)),
    keras.layers.Lambda(lambda x: keras.ops.expand_dims(x, axis=-1)),
    keras.layers.SimpleRNN(40, return_sequences=True),
    keras.layers.SimpleRNN(40),
    keras.layers.Dense(1),
    keras.layers.Lambda(lambda x: x * 100.0),
])
model.compile(loss=keras.losses.Huber(), optimizer=keras.optimizers.SGD(learning_rate=1e-6,
                                                                         momentum=0.9),
              metrics=["mae"])
history = model.fit(X, y, epochs=2, batch_size=32, verbose=0)
print("mae:", [round(v, 2) for v in history.history["mae"]])
