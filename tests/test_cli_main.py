"""The `openrlhf-cfpo` dispatcher."""
import subprocess
import sys

from openrlhf_cfpo.cli.main import SUBCOMMANDS, main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in SUBCOMMANDS)


def test_unknown_command_is_one_error_line_naming_the_known_ones(capsys):
    assert main(["trian"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'trian'" in err and "compare" in err


def test_every_command_points_at_a_function_that_exists():
    code = "import importlib, sys; from openrlhf_cfpo.cli.main import SUBCOMMANDS\n" \
           "missing = [n for n, (m, f, _) in SUBCOMMANDS.items() if not callable(getattr(importlib.import_module(m), f, None))]\n" \
           "sys.exit(', '.join(missing) or 0)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
