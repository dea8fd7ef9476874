import subprocess
import sys

from edgekd.cli.main import main


def test_version(capsys):
    assert main(["--version"]) == 0
    assert "edgekd" in capsys.readouterr().out


def test_help_is_fast_and_light():
    code = "import sys, edgekd.cli.main; print(any(m in sys.modules for m in ('torch', 'onnxruntime', 'tensorrt', 'transformers')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", "edgekd --help must not import heavy libraries"


def test_unknown_command_fails(capsys):
    assert main(["no-such-command"]) != 0
