import numpy as np
import keras
from keras import layers


# The TensorFlow-2 tutorial style: subclass keras.Model and write call().
class SequenceRegressor(keras.Model):
    def __init__(self, units=16, **kwargs):
        super().__init__(**kwargs)
        self.rnn = layers.SimpleRNN(units, return_sequences=True)
        self.rnn2 = layers.SimpleRNN(units // 2)
        self.head = layers.Dense(1)

    def call(self, inputs, training=False):
        x = self.rnn(inputs)
        x = self.rnn2(x)
        return self.head(x)


rng = np.random.default_rng(0)
X = rng.normal(size=(256, 10, 2)).astype("float32")
y = X[:, :, 0].mean(axis=1, keepdims=True)

model = SequenceRegressor(units=16, name="regressor")
model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", metrics=["mae"])
history = model.fit(X, y, epochs=4, batch_size=32, validation_split=0.2, verbose=0)
print("val_mae went down:", history.history["val_mae"][-1] < history.history["val_mae"][0])
model.summary()
print("layers:", [layer.name for layer in model.layers])
print("weights:", [w.shape for w in model.get_weights()])
print("predictions:", model.predict(X[:3], verbose=0).shape)
print("direct call:", np.asarray(model(X[:2])).shape)
