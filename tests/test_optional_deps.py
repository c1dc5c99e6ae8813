"""The interop modules import nothing optional until used, and say what to install."""
import subprocess
import sys

import pytest

import fastrnn
from fastrnn import export, interop, saving


def test_importing_pulls_in_no_optional_dependency():
    code = ("import sys, fastrnn, fastrnn.saving, fastrnn.export, fastrnn.interop; "
            "print(sorted(m for m in ('h5py', 'onnx', 'onnxruntime', 'torch') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def model():
    return fastrnn.Sequential([fastrnn.Input((3, 1)), fastrnn.layers.SimpleRNN(2),
                               fastrnn.layers.Dense(1)])


@pytest.mark.parametrize("call", [
    lambda tmp: saving.save_model(model(), tmp / "m.keras"),
    lambda tmp: saving.load_model(tmp / "m.keras"),
    lambda tmp: saving.save_weights_h5(model(), tmp / "m.weights.h5"),
    lambda tmp: saving.load_weights_h5(model(), tmp / "m.weights.h5"),
])
def test_without_h5py(monkeypatch, tmp_path, call):
    monkeypatch.setitem(sys.modules, "h5py", None)   # import h5py now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "fastrnn\[keras-io\]"'):
        call(tmp_path)


def test_without_onnx(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r'pip install "fastrnn\[onnx\]"'):
        export.to_onnx(model())


def test_without_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.delitem(sys.modules, "fastrnn.interop.torch", raising=False)
    with pytest.raises(ImportError, match="pip install torch"):
        interop.to_torch(model())
