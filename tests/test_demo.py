"""The command line demo: ``python -m fastrnn demo``."""
import subprocess
import sys

import pytest

from fastrnn.__main__ import build_parser, main


def test_demo_runs_the_tutorial(capsys):
    assert main(["demo", "--epochs", "3"]) == 0
    out = capsys.readouterr().out
    assert "Tutorial data: X (100, 3, 1), Y (100,)" in out
    assert "simple_rnn (SimpleRNN)" in out and "440" in out and "Total params: 461" in out
    assert "Trained 3 epochs in" in out and "Final training loss (MSE" in out
    assert "[8.0, 8.1, 8.2] ->" in out and "(target 8.3" in out


def test_demo_plot_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "loss.png"
    assert main(["demo", "--epochs", "2", "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"Loss curve written to {path}" in capsys.readouterr().out


def test_demo_plot_without_matplotlib(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert main(["demo", "--epochs", "2", "--plot", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert "matplotlib" in err and "pip install" in err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("argv", [[], ["demo", "--epochs", "0"], ["demo", "--epochs", "x"],
                                  ["nope"]])
def test_bad_command_lines_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_parser_is_extensible():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    sub.add_parser("extra").set_defaults(func=lambda args: 7)
    args = parser.parse_args(["extra"])
    assert args.func(args) == 7


def test_python_dash_m_entry_point():
    result = subprocess.run([sys.executable, "-m", "fastrnn", "demo", "--epochs", "1"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Total params: 461" in result.stdout


def test_readme_usage_runs():
    import pathlib
    import re
    readme = pathlib.Path(__file__).resolve().parent.parent / "README.md"
    if not readme.exists():
        pytest.skip("README.md not next to the tests")
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)
    assert blocks
    namespace = {}
    exec(compile("\n".join(blocks), str(readme), "exec"), namespace)  # noqa: S102
    assert namespace["history"].history["loss"][-1] < 0.002
    assert namespace["h"].shape == (100, 3, 20)
