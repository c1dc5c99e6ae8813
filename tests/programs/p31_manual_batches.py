import numpy as np
import keras

# An old-school training loop: train_on_batch / test_on_batch / predict_on_batch.
rng = np.random.default_rng(11)
X = rng.normal(size=(320, 7, 2)).astype("float32")
y = (X[:, :, 0] * X[:, :, 1]).sum(axis=1, keepdims=True).astype("float32")
X_val, y_val = X[256:], y[256:]

model = keras.Sequential([keras.Input(shape=(7, 2)), keras.layers.SimpleRNN(20),
                          keras.layers.Dense(1)])
model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9), loss="mse",
              metrics=["mae"])
batch_size = 32
for epoch in range(4):
    order = rng.permutation(256)
    losses = []
    for start in range(0, 256, batch_size):
        idx = order[start:start + batch_size]
        loss, mae = model.train_on_batch(X[idx], y[idx])
        losses.append(loss)
    val_loss, val_mae = model.test_on_batch(X_val, y_val)
    print(f"epoch {epoch + 1}: loss {np.mean(losses):.4f} val_loss {val_loss:.4f}")
print("predict_on_batch:", model.predict_on_batch(X_val[:3]).shape)
