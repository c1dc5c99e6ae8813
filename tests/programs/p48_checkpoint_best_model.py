import os
import tempfile
import numpy as np
import keras
from keras.callbacks import EarlyStopping, ModelCheckpoint
from keras.layers import Dense, SimpleRNN
from keras.models import Sequential, load_model

# Keep the best model on disk while training, then reload it for the test set.
np.random.seed(3)
X = np.random.rand(400, 10, 1).astype("float32")
y = (X[:, -3:, 0].mean(axis=1) > 0.5).astype("float32")
X_train, X_test, y_train, y_test = X[:320], X[320:], y[:320], y[320:]

model = Sequential()
model.add(SimpleRNN(16, input_shape=(10, 1), activation="tanh"))
model.add(Dense(1, activation="sigmoid"))
model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])

best_path = os.path.join(tempfile.mkdtemp(), "best_model.keras")
callbacks = [
    EarlyStopping(monitor="val_loss", mode="min", patience=3, verbose=1),
    ModelCheckpoint(best_path, monitor="val_accuracy", mode="max", save_best_only=True,
                    verbose=1),
]
history = model.fit(X_train, y_train, validation_split=0.2, epochs=8, batch_size=32,
                    callbacks=callbacks, verbose=0)
saved = load_model(best_path)
_, train_acc = saved.evaluate(X_train, y_train, verbose=0)
_, test_acc = saved.evaluate(X_test, y_test, verbose=0)
print("best val_accuracy: %.3f" % max(history.history["val_accuracy"]))
print("Train: %.3f, Test: %.3f" % (train_acc, test_acc))
