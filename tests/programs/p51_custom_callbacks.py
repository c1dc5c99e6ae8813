import numpy as np
import keras


# The course pattern: a Callback subclass that stops training at a target loss,
# and one that records something every batch and reads the optimizer.
class StopAtLoss(keras.callbacks.Callback):
    def __init__(self, target):
        super().__init__()
        self.target = target

    def on_epoch_end(self, epoch, logs=None):
        if logs.get("loss") < self.target:
            print(f"\nReached loss {logs['loss']:.4f} < {self.target}, stopping at epoch {epoch + 1}")
            self.model.stop_training = True


class BatchRecorder(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.batch_losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.batch_losses.append(logs["loss"])

    def on_epoch_begin(self, epoch, logs=None):
        self.rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


rng = np.random.default_rng(2)
X = rng.uniform(0, 1, size=(300, 5, 1)).astype("float32")
y = X.mean(axis=(1, 2))
model = keras.Sequential([keras.Input((5, 1)), keras.layers.SimpleRNN(10),
                          keras.layers.Dense(1)])
model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse")
recorder = BatchRecorder()
history = model.fit(X, y, epochs=40, batch_size=30,
                    callbacks=[StopAtLoss(0.002), recorder], verbose=0)
print("epochs run:", len(history.history["loss"]), "of 40")
print("batches recorded:", len(recorder.batch_losses) == 10 * len(history.history["loss"]))
print("learning rate seen by the callback:", round(recorder.rate, 4))
