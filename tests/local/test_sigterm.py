"""SIGTERM (``kill``, a job scheduler's stop) keeps progress as Ctrl-C does: the step is finished and saved, and one
line says where ``--resume`` continues."""

import os
import signal

import pytest

from openrlhf_cfpo.local.cli import main_local
from openrlhf_cfpo.local.config import parse_args
from openrlhf_cfpo.local.errors import Interrupted
from openrlhf_cfpo.local.trainer import LocalTrainer

FLAGS = ["--train.max_epochs", "2", "--ckpt.save_steps", "100"]  # 4 steps a rollout; no save but the one on stop


class Unhandled(Exception):
    pass


class Exited(Exception):
    """os._exit, in a test: the process would end here."""


@pytest.fixture(autouse=True)
def sigterm_outside_the_run_raises():
    """Outside a run's own handler, SIGTERM raises here instead of ending the test session."""

    def unhandled(signum, frame):
        raise Unhandled("SIGTERM reached the handler outside the run")

    previous = signal.signal(signal.SIGTERM, unhandled)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_sigterm_stops_a_run_at_the_end_of_its_step_saved_and_resume_continues_it(local_flags, tmp_path):
    out = tmp_path / "run"
    lines = []
    run = LocalTrainer(parse_args([*local_flags, *FLAGS, "--ckpt.output_dir", str(out)]), log=lines.append)
    run.callbacks.append(lambda t, record: os.kill(os.getpid(), signal.SIGTERM) if record["step"] == 5 else None)
    with pytest.raises(Interrupted) as stopped:
        run.fit()
    assert (stopped.value.step, stopped.value.checkpoint.name) == (5, "global_step_5")
    assert "SIGTERM: stopping after this optimizer step, which is saved (a second one stops at once)" in lines
    assert signal.getsignal(signal.SIGTERM).__name__ == "unhandled"  # the handler before the run is back
    resumed = LocalTrainer(
        parse_args([*local_flags, *FLAGS, "--ckpt.output_dir", str(out), "--resume"]), log=lambda m: None
    )
    assert resumed.global_step == 5
    assert resumed.fit()["steps"] == 12


def test_local_says_in_one_line_where_a_run_stopped_by_sigterm_resumes(arithmetic_flags, tmp_path, capsys):
    reward = tmp_path / "reward.py"  # sends SIGTERM on its 9th call: in rollout 2, after step 4
    reward.write_text(
        "import os, signal, torch\ncalls = 0\ndef reward_func(queries, prompts, labels):\n    global calls\n"
        "    calls += 1\n    if calls == 9:\n        os.kill(os.getpid(), signal.SIGTERM)\n"
        "    return {'rewards': torch.tensor([1.0])}\n"
    )
    out = tmp_path / "run"
    code = main_local([*arithmetic_flags, *FLAGS, "--reward.remote_url", str(reward), "--ckpt.output_dir", str(out)])
    assert code == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"openrlhf-cfpo local: interrupted at step 4/12; saved {out / 'checkpoints' / 'global_step_4'}: `--resume` "
        "continues from it"
    )


@pytest.mark.parametrize("delay_s", [0.3, 0.6, 0.9, 1.5])  # in the imports (numpy, torch, transformers), then checks
def test_sigterm_during_start_up_is_one_line_not_a_silent_exit(local_flags, tmp_path, delay_s):
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    argv = [sys.executable, "-m", "openrlhf_cfpo.cli.main", "local", *local_flags, "--ckpt.output_dir", str(out)]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    time.sleep(delay_s)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=300)[1].strip().splitlines()
    assert proc.returncode == 130, err[-5:]  # (not -2: killed by SIGINT, as CPython does after some KeyboardInterrupts)
    assert err[-1].startswith("openrlhf-cfpo local: interrupted") and "Traceback" not in "\n".join(err), err[-5:]


def test_a_signal_inside_an_import_during_start_up_exits_on_the_spot_not_by_an_exception(tmp_path, monkeypatch, capsys):
    # An exception raised inside an import leaves the module half-initialised: numpy's next use then recursed until a
    # RecursionError, and transformers said "Could not import module 'AutoModelForCausalLM'", a traceback and exit 1.
    import sys

    from openrlhf_cfpo.local import cli

    exits = []

    def exit_now(code):
        exits.append(code)
        raise Exited

    monkeypatch.setattr(cli.os, "_exit", exit_now)
    stop = cli._start_up_stopper("openrlhf-cfpo local")
    (tmp_path / "module_being_imported.py").write_text(
        "import signal, sys\nimport test_sigterm_probe as probe\nprobe.stop(signal.SIGTERM, sys._getframe())\n"
    )
    probe = type(sys)("test_sigterm_probe")
    probe.stop = stop
    monkeypatch.setitem(sys.modules, "test_sigterm_probe", probe)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(Exited):
        import module_being_imported  # noqa: F401

    assert exits == [130]
    assert capsys.readouterr().err == "openrlhf-cfpo local: interrupted during start-up, before anything was written\n"
    # outside an import: an exception that unwinds what started, not KeyboardInterrupt itself for SIGTERM
    with pytest.raises(cli.Terminated) as raised:
        stop(signal.SIGTERM, sys._getframe())
    assert type(raised.value) is not KeyboardInterrupt and isinstance(raised.value, KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        stop(signal.SIGINT, sys._getframe())
