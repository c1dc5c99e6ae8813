import numpy as np
from keras.models import Sequential
from keras.layers import SimpleRNN, Dense, Input

# Named layers, model.get_layer, per-layer weights and configs.
model = Sequential(name="named_rnn")
model.add(Input(shape=(5, 2)))
model.add(SimpleRNN(6, name="encoder"))
model.add(Dense(3, activation="relu", name="hidden"))
model.add(Dense(1, name="head"))
model.summary()

encoder = model.get_layer("encoder")
print("encoder units:", encoder.units)
print("encoder config units/activation:", encoder.get_config()["units"],
      encoder.get_config()["activation"])
for layer in model.layers:
    shapes = [w.shape for w in layer.get_weights()]
    print(layer.name, layer.__class__.__name__, shapes, layer.count_params())
print("total params:", model.count_params())
print("trainable weights:", len(model.trainable_weights))
print("output shape:", model.output_shape)
print("by index:", model.get_layer(index=2).name)

model.compile(optimizer="adam", loss="mse")
x = np.random.rand(40, 5, 2)
model.fit(x, x.sum(axis=(1, 2)), epochs=2, verbose=0)
print("kernel changed shape?", encoder.get_weights()[0].shape)
