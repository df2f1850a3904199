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


def test_a_command_whose_extra_is_not_installed_is_one_line_naming_the_extra():
    code = (
        "import sys; sys.modules['ray'] = None  # what an install without the openrlhf extra has of ray\n"
        "from openrlhf_cfpo.cli.main import main\n"
        "sys.exit(main(['train-ppo-ray', '--help']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1 and "ray is not installed" in proc.stderr
    assert "pip install 'openrlhf-cfpo[openrlhf]'" in proc.stderr


def test_every_command_points_at_a_function_that_exists():
    code = (
        "import importlib, sys; from openrlhf_cfpo.cli.main import SUBCOMMANDS\n"
        "missing = [n for n, (m, f, _) in SUBCOMMANDS.items()\n"
        "           if not callable(getattr(importlib.import_module(m), f, None))]\n"
        "sys.exit(', '.join(missing) or 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_commands_start_without_the_pynvml_deprecation_warning():
    proc = subprocess.run(
        [sys.executable, "-m", "openrlhf_cfpo.cli.main", "local", "--help"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0 and "usage" in proc.stdout
    assert "pynvml" not in proc.stderr, proc.stderr


def test_train_ppo_ray_help_and_driver_checks_run_without_vllm_or_flash_attn_kernels():
    """On a laptop (no vLLM, no flash-attn CUDA extension) the documented driver checks still run, in one line."""
    import os

    stubs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stubs")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and os.path.abspath(p) != stubs
        ),
    }
    # vLLM's CPU build is installed here: find_spec, which the driver asks, does not see it, as on a laptop
    code = (
        "import importlib.util, sys; find_spec = importlib.util.find_spec; "
        "importlib.util.find_spec = lambda name, *a: None if name.split('.')[0] == 'vllm' else find_spec(name, *a); "
        "assert importlib.util.find_spec('vllm') is None; "
        "from openrlhf_cfpo.cli.main import main; sys.exit(main(sys.argv[1:]))"
    )

    def run(*flags):
        return subprocess.run(
            [sys.executable, "-c", code, "train-ppo-ray", *flags], capture_output=True, text=True, env=env, timeout=300
        )

    help_ = run("--help")
    assert help_.returncode == 0 and "--actor.policy_loss_type" in help_.stdout, help_.stderr[-2000:]
    bad = run("--actor.policy_loss_type", "cfpo", "--actor.dual_clip", "3")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].endswith("drop dual_clip"), bad.stderr[-2000:]
    good = run(
        "--actor.policy_loss_type",
        "cfpo",
        "--algo.advantage.estimator",
        "rloo",
        "--rollout.n_samples_per_prompt",
        "2",
        "--actor.model_name_or_path",
        "policy",
        "--reward.model_name_or_path",
        "rm",
    )
    last = good.stderr.strip().splitlines()[-1]
    assert good.returncode == 2 and "passed every check" in last and "vllm" in last, good.stderr[-2000:]
