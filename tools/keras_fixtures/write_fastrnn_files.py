"""Write the fastrnn-made .keras / .weights.h5 files that real Keras is then asked to read.

Run in an environment with fastrnn and h5py installed, from the repository root::

    python tools/keras_fixtures/write_fastrnn_files.py

then run ``make_keras_fixtures.py`` in the Keras environment (see its docstring).
Writes ``tests/fixtures/keras/fastrnn_<case>.keras`` and
``fastrnn_<case>.weights.h5`` for every case in ``cases.py``, plus a float64
variant of the tutorial.
"""
import os
import sys

import fastrnn
from fastrnn.saving import save_model, save_weights_h5

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from cases import CASES  # noqa: E402

OUT = os.path.join(HERE, "..", "..", "tests", "fixtures", "keras")


def main():
    os.makedirs(OUT, exist_ok=True)
    for i, (case, build) in enumerate(sorted(CASES.items())):
        fastrnn.clear_session()
        fastrnn.set_random_seed(100 + i)
        model = build(fastrnn)
        # non-zero biases, so a bias lost on the way shows
        model.set_weights([w + 0.1 if w.ndim == 1 else w for w in model.get_weights()])
        save_model(model, os.path.join(OUT, f"fastrnn_{case}.keras"))
        save_weights_h5(model, os.path.join(OUT, f"fastrnn_{case}.weights.h5"))
    fastrnn.clear_session()
    fastrnn.set_random_seed(200)
    model = fastrnn.Sequential([fastrnn.Input((3, 1), dtype="float64"),
                                fastrnn.layers.SimpleRNN(20), fastrnn.layers.Dense(1)])
    save_model(model, os.path.join(OUT, "fastrnn_tutorial_float64.keras"))
    print("wrote", sorted(f for f in os.listdir(OUT) if f.startswith("fastrnn_")))


if __name__ == "__main__":
    main()
