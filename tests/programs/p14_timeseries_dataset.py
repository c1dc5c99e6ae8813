import numpy as np
import keras

data = np.sin(np.linspace(0, 40, 1000)).astype("float32")[:, None]
seq = 24
ds = keras.utils.timeseries_dataset_from_array(data[:-seq], data[seq:, 0],
                                               sequence_length=seq, batch_size=64)
model = keras.Sequential([keras.Input((seq, 1)), keras.layers.SimpleRNN(20),
                          keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
model.fit(ds, epochs=2, verbose=0)
print(model.evaluate(ds, verbose=0))
