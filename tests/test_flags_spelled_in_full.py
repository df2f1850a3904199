"""Every command reads a flag only as spelled in full: argparse's default would take a prefix (``--max-new``) for the
one flag it starts, without a word, and a flag added later would change which."""

import pytest

from openrlhf_cfpo import doctor, gpu_smoke
from openrlhf_cfpo.eval import cli as eval_cli
from openrlhf_cfpo.eval import suite

CASES = {
    "eval": (eval_cli.build_parser().parse_args, ["gsm8k", "--model", "m", "--output", "o", "--max-new", "3"]),
    "eval report": (eval_cli.build_parser().parse_args, ["report", "run", "--allow"]),
    "doctor": (doctor.build_parser().parse_args, ["--output", "/tmp"]),
    "gpu-smoke": (gpu_smoke.build_parser().parse_args, ["--log", "/tmp/smoke"]),
    "run_suite's listing": (suite.main, ["--doctor"]),
}


@pytest.mark.parametrize("command", CASES)
def test_a_flag_cut_short_is_refused_not_taken_for_the_flag_it_starts(command, capsys):
    parse, argv = CASES[command]
    with pytest.raises(SystemExit) as exit_:
        parse(argv)
    assert exit_.value.code == 2
    cut = next(word for word in reversed(argv) if word.startswith("--"))
    assert f"unrecognized arguments: {cut}" in capsys.readouterr().err
