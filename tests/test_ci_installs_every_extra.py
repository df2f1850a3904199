"""Under CI a skip for a missing extra fails, at collection and inside a test; elsewhere it stays a skip."""

import os
import subprocess
import sys
from pathlib import Path

PLUGINS = Path(__file__).resolve().parent / "plugins"
MODULE_SKIP = (
    'import pytest\npytest.importorskip("no_such_module_x", reason="needs the x extra")\n\n\ndef test_a():\n    pass\n'
)
TEST_SKIP = (
    'import pytest\n\n\ndef test_b():\n    pytest.importorskip("no_such_module_y", reason="needs the y extra")\n'
)
OTHER_SKIP = 'import pytest\n\n\ndef test_c():\n    pytest.skip("verl is installed: tests/verl check it")\n'


def _outcomes(tmp_path, ci: bool) -> str:
    for name, text in (("test_m.py", MODULE_SKIP), ("test_t.py", TEST_SKIP), ("test_o.py", OTHER_SKIP)):
        (tmp_path / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": "1"} if ci else {})
    env["PYTHONPATH"] = os.pathsep.join([str(PLUGINS), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "ci_installs_every_extra",
            "-q",
            "-p",
            "no:cacheprovider",
            "--continue-on-collection-errors",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.stdout.strip().splitlines()[-1]


def test_under_ci_a_skip_for_a_missing_extra_fails_where_another_skip_stays(tmp_path):
    assert _outcomes(tmp_path, ci=True).startswith("1 failed, 1 skipped, 1 error")


def test_without_ci_every_skip_stays_a_skip(tmp_path):
    assert _outcomes(tmp_path, ci=False).startswith("3 skipped")
