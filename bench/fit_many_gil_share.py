"""How much of a tutorial model's training holds the GIL: the ceiling on fit_many's thread scaling.

    python bench/fit_many_gil_share.py

Measures CPU time (not wall time, so other processes on the machine barely
matter) per tutorial model (``SimpleRNN(20) -> Dense(1)``, 100 samples, batch
32, 50 epochs): building and compiling it, its whole ``fit``, and the part of
that ``fit`` spent in the compiled, GIL-free epoch call.  Everything else
holds the GIL, so with a GIL-held share ``g`` a pool of ``n`` threads is at
most ``1 / (g + (1 - g) / n)`` times faster than one (Amdahl).

It calls the model's compiled engine directly (``model._trainer()`` and its
``run_epoch``, the GIL-free call ``fit`` makes once per epoch).
"""
import time

import numpy as np

import fastrnn

MODELS, EPOCHS = 200, 50


def build():
    model = fastrnn.Sequential([fastrnn.layers.SimpleRNN(20, input_shape=[3, 1]),
                                fastrnn.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


def compiled_epoch(model, x, y):
    """A function running one GIL-free compiled epoch of ``model`` on (x, y)."""
    engine = model._trainer()
    engine.bind_data(np.ascontiguousarray(x, np.float32),
                     np.ascontiguousarray(y.reshape(-1, 1), np.float32))
    order, losses = np.arange(len(x), dtype=np.int64), np.empty(-(-len(x) // 32))
    rates = np.full(len(losses), 0.001)
    return lambda: engine.run_epoch(order, 32, rates, losses)


def main():
    x, y = fastrnn.data.make_sequences(100, 3)
    print(f"CPU time per tutorial model ({EPOCHS} epochs), {MODELS} models, 3 rounds:")
    for _ in range(3):
        c0 = time.process_time()
        models = [build() for _ in range(MODELS)]
        c1 = time.process_time()
        for model in models:
            model.fit(x, y, epochs=EPOCHS, batch_size=32, verbose=0)
        c2 = time.process_time()
        epoch = compiled_epoch(models[0], x, y)
        c3 = time.process_time()
        for _ in range(MODELS * EPOCHS):
            epoch()
        c4 = time.process_time()
        build_ms, fit_ms, free_ms = ((c1 - c0) * 1e3 / MODELS, (c2 - c1) * 1e3 / MODELS,
                                     (c4 - c3) * 1e3 / MODELS)
        held = 1 - free_ms / (build_ms + fit_ms)
        print(f"  build+compile {build_ms:.2f} ms, fit {fit_ms:.2f} ms (GIL-free compiled "
              f"epochs {free_ms:.2f} ms): GIL-held share {held:.2f}, so 2 threads <= "
              f"{1 / (held + (1 - held) / 2):.2f}x one")


if __name__ == "__main__":
    main()
