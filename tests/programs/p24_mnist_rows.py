import numpy as np
import keras
from keras.utils import to_categorical

# MNIST read row by row: each 28x28 image is 28 steps of 28 pixels (random stand-in data).
rng = np.random.default_rng(3)
num_classes = 10
x_train = rng.integers(0, 256, size=(512, 28, 28)).astype("float32")
y_train = rng.integers(0, num_classes, size=512)
x_test = rng.integers(0, 256, size=(128, 28, 28)).astype("float32")
y_test = rng.integers(0, num_classes, size=128)
# make the classes learnable: brighten the row of the label
for images, labels in ((x_train, y_train), (x_test, y_test)):
    images[np.arange(len(labels)), labels * 2, :] = 255.0
x_train, x_test = x_train / 255.0, x_test / 255.0
y_train_cat = to_categorical(y_train, num_classes)
y_test_cat = to_categorical(y_test, num_classes)

model = keras.models.Sequential([
    keras.layers.SimpleRNN(64, input_shape=(28, 28), activation="relu"),
    keras.layers.Dense(num_classes, activation="softmax"),
])
model.compile(loss="categorical_crossentropy",
              optimizer=keras.optimizers.Adam(learning_rate=0.001), metrics=["accuracy"])
model.fit(x_train, y_train_cat, batch_size=64, epochs=3, verbose=1,
          validation_data=(x_test, y_test_cat))
scores = model.evaluate(x_test, y_test_cat, verbose=0)
print("Test loss:", scores[0])
print("Test accuracy:", scores[1])
predicted = np.argmax(model.predict(x_test[:10]), axis=-1)
print("predicted:", predicted)
print("actual:   ", y_test[:10])
