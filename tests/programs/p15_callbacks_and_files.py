import os
import tempfile
import numpy as np
import keras

X = np.random.rand(200, 6, 2).astype("float32")
y = X.sum(axis=(1, 2))
model = keras.Sequential([keras.Input((6, 2)), keras.layers.SimpleRNN(12),
                          keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
folder = tempfile.mkdtemp()
path = os.path.join(folder, "best.weights.h5")
callbacks = [
    keras.callbacks.ModelCheckpoint(path, save_best_only=True, save_weights_only=True,
                                    monitor="val_loss"),
    keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1),
    keras.callbacks.CSVLogger(os.path.join(folder, "log.csv")),
]
model.fit(X, y, epochs=4, validation_split=0.25, callbacks=callbacks, verbose=0)
model.load_weights(path)
model.save(os.path.join(folder, "model.keras"))
again = keras.models.load_model(os.path.join(folder, "model.keras"))
print(np.allclose(again.predict(X[:3], verbose=0), model.predict(X[:3], verbose=0)))
