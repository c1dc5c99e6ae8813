"""Run the corpus programs (tests/programs/) under real Keras 3, and record the
outputs of the deterministic ones.

Run in a throwaway venv with Keras and JAX (never a test dependency)::

    KERAS_BACKEND=jax python tools/keras_fixtures/programs.py            # run all, report
    KERAS_BACKEND=jax python tools/keras_fixtures/programs.py p25 p33    # some of them
    KERAS_BACKEND=jax python tools/keras_fixtures/programs.py --record   # write the fixtures

``tensorflow.keras`` imports are pointed at ``keras`` (the JAX backend runs
without TensorFlow); nothing else in a program changes.  ``--record`` writes
the standard output of each program of ``DETERMINISTIC`` to
``tests/fixtures/keras/programs/<program>.out``; tests/test_programs.py
compares the numbers fastrnn prints with those.
"""
import contextlib
import io
import os
import re
import runpy
import sys
import tempfile
import traceback

import keras

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROGRAMS = os.path.join(ROOT, "tests", "programs")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "keras", "programs")

#: programs whose printed numbers do not depend on random draws (fixed weights, no shuffling)
DETERMINISTIC = ["p25_hidden_states_submodel.py", "p33_fixed_weights_sgd.py",
                 "p36_fixed_weights_adam_functional.py", "p37_fixed_weights_classifier.py",
                 "p38_fixed_weights_regularized.py", "p46_fixed_weights_pooling.py",
                 "p55_fixed_weights_lambda.py", "p58_fixed_weights_masked_max_pool.py",
                 "p59_fixed_weights_masked_average_pool.py"]

_TO_KERAS = [
    (r"^from tensorflow\.keras(\.|\s)", r"from keras\1"),
    (r"^from tensorflow import keras\b", "import keras"),
    (r"^import tensorflow\.keras as keras\b", "import keras"),
]


def to_keras(source):
    out = []
    for line in source.splitlines():
        for pattern, repl in _TO_KERAS:
            line = re.sub(pattern, repl, line)
        out.append(line)
    return "\n".join(out) + "\n"


def run(name):
    """(ok, stdout) of one program run under Keras in a fresh temporary folder."""
    with open(os.path.join(PROGRAMS, name)) as f:
        source = to_keras(f.read())
    keras.backend.clear_session()
    folder = tempfile.mkdtemp()
    script = os.path.join(folder, name)
    with open(script, "w") as f:
        f.write(source)
    out, here = io.StringIO(), os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(script, run_name="__main__")
        return True, out.getvalue()
    except Exception:
        return False, out.getvalue() + traceback.format_exc()
    finally:
        os.chdir(here)


def main(argv):
    record = "--record" in argv
    wanted = [a for a in argv if not a.startswith("--")]
    names = sorted(f for f in os.listdir(PROGRAMS) if f.endswith(".py"))
    if record:
        names = DETERMINISTIC
    elif wanted:
        names = [n for n in names if any(n.startswith(w) for w in wanted)]
    failed = []
    for name in names:
        ok, text = run(name)
        print(f"=== {name}: {'ok' if ok else 'FAILED'}\n{text}", file=sys.stderr)
        if not ok:
            failed.append(name)
        elif record:
            os.makedirs(FIXTURES, exist_ok=True)
            with open(os.path.join(FIXTURES, name[:-3] + ".out"), "w") as f:
                f.write(f"# keras {keras.__version__}, backend {keras.backend.backend()}\n")
                f.write(text)
    print(f"keras {keras.__version__}: {len(names) - len(failed)} of {len(names)} ran; "
          f"failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
