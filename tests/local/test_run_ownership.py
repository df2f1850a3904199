"""Nothing lost: one process per run folder, a checkpoint folder belongs to one run, and the final model is written
whole (or the run is not finished), with a full disk as one line that says how to continue."""

import builtins
import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import threading

import pytest
import torch

from openrlhf_cfpo.local import checkpoint, hf
from openrlhf_cfpo.local.cli import main_compare, main_local, main_plot
from openrlhf_cfpo.local.logger import read_metrics

ERROR = "openrlhf-cfpo local: error: "


@pytest.fixture
def no_model_loads(monkeypatch):
    import openrlhf_cfpo.local.trainer as trainer

    monkeypatch.setattr(
        trainer.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: pytest.fail("a model was loaded")
    )


@pytest.fixture
def hold_lock():
    """``hold_lock(folder)``: another process that holds ``folder``'s lock until the test ends (or is killed)."""
    procs = []

    def hold(folder):
        code = (
            "import sys, time\nfrom openrlhf_cfpo.local.lock import FolderLocks\n"
            "FolderLocks().take('ckpt.output_dir', sys.argv[1])\nprint('held', flush=True)\ntime.sleep(300)\n"
        )
        proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "held"
        return proc

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


def _error_line(capsys, prefix=ERROR):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(prefix), err
    return err[0]


def _last_line(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err and "unexpected pos" not in err, err
    return err.strip().splitlines()[-1]


# ------------------------------------------------------------------ 1. one run folder, one process


def test_a_second_resume_on_a_locked_run_folder_is_refused_naming_the_holder(
    local_flags, tmp_path, capsys, hold_lock, no_model_loads
):
    out = tmp_path / "run"
    holder = hold_lock(out)
    assert main_local([*local_flags, "--ckpt.output_dir", str(out), "--resume"]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"{ERROR}--ckpt.output_dir {out} is in use by another run (process {holder.pid} on ")
    assert socket.gethostname() in line and line.endswith("or choose another --ckpt.output_dir")
    assert not (out / "metrics.jsonl").exists()


def test_a_lock_left_by_a_killed_process_is_taken_over(local_flags, tmp_path, hold_lock):
    out = tmp_path / "run"
    holder = hold_lock(out)
    holder.kill()  # kill -9: its lock file stays, its flock goes with it
    holder.wait()
    assert (out / ".lock").read_text().startswith(f"{holder.pid} ")
    assert main_local([*local_flags, "--ckpt.output_dir", str(out)]) == 0
    assert [r["step"] for r in read_metrics(str(out / "metrics.jsonl"))] == list(range(1, 7))


def test_a_checkpoint_folder_locked_by_another_run_is_refused(local_flags, tmp_path, capsys, hold_lock, no_model_loads):
    shared = tmp_path / "shared"
    holder = hold_lock(shared)
    assert main_local([*local_flags, "--ckpt.output_dir", str(tmp_path / "b"), "--ckpt.path", str(shared)]) == 2
    assert _error_line(capsys).startswith(f"{ERROR}--ckpt.path {shared} is in use by another run (process {holder.pid}")
    assert not (tmp_path / "b").exists()  # a refused run leaves no empty folder behind


def test_a_tensorboard_folder_locked_by_another_run_is_refused(
    local_flags, tmp_path, capsys, hold_lock, no_model_loads
):
    shared = tmp_path / "tb"
    holder = hold_lock(shared)
    flags = ["--ckpt.output_dir", str(tmp_path / "b"), "--logger.tensorboard_dir", str(shared)]
    assert main_local([*local_flags, *flags]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"{ERROR}--logger.tensorboard_dir {shared} is in use by another run (process {holder.pid}")
    assert list(shared.iterdir()) == [shared / ".lock"] and not (tmp_path / "b").exists()


def test_a_run_holds_its_tensorboard_folder_while_it_trains(local_flags, tmp_path, monkeypatch):
    import openrlhf_cfpo.local.trainer as trainer
    from openrlhf_cfpo.local.lock import holder

    tb, held = tmp_path / "tb", []
    real_fit = trainer.LocalTrainer.fit

    def fit(self, *a, **k):
        held.append(
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import sys; from openrlhf_cfpo.local.lock import holder; print(holder(sys.argv[1]))",
                    str(tb),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        return real_fit(self, *a, **k)

    monkeypatch.setattr(trainer.LocalTrainer, "fit", fit)
    assert (
        main_local([*local_flags, "--ckpt.output_dir", str(tmp_path / "a"), "--logger.tensorboard_dir", str(tb)]) == 0
    )
    assert held == [f"process {os.getpid()} on {socket.gethostname()}"]
    assert holder(tb) is None  # released at the end (and this process would not count anyway)


def test_a_second_compare_on_the_same_output_is_refused_before_any_run_starts(
    local_flags, tmp_path, capsys, hold_lock, monkeypatch
):
    import openrlhf_cfpo.local.runs as runs

    monkeypatch.setattr(runs, "train_children", lambda *a, **k: pytest.fail("a run started"))
    out = tmp_path / "cmp"
    holder = hold_lock(out)
    assert main_compare(["--output", str(out), *local_flags, "--resume"]) == 2
    assert _error_line(capsys, "openrlhf-cfpo compare: error: ").startswith(
        f"openrlhf-cfpo compare: error: --output {out} is in use by another run (process {holder.pid} on "
    )


def test_a_compare_whose_embedded_default_cannot_be_built_leaves_no_output_folder(
    local_flags, tmp_path, capsys, monkeypatch
):
    import openrlhf_cfpo.local.runs as runs
    from openrlhf_cfpo.local.errors import ConfigError

    def cannot_build(*a, **k):
        raise ConfigError("the embedded default cannot be built here")

    monkeypatch.setattr(runs, "prepare_embedded_defaults", cannot_build)
    monkeypatch.setattr(runs, "train_children", lambda *a, **k: pytest.fail("a run started"))
    out = tmp_path / "new" / "cmp"
    assert main_compare(["--output", str(out), *local_flags]) == 2
    assert _error_line(capsys, "openrlhf-cfpo compare: error: ").endswith("cannot be built here")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    "flag, what", [("--ckpt.path", "checkpoints"), ("--logger.tensorboard_dir", "TensorBoard logs")]
)
def test_compare_refuses_one_checkpoint_or_tensorboard_folder_for_all_of_its_runs(
    local_flags, tmp_path, capsys, monkeypatch, flag, what
):
    import openrlhf_cfpo.local.runs as runs

    monkeypatch.setattr(runs, "train_children", lambda *a, **k: pytest.fail("a run started"))
    shared = tmp_path / "shared"
    assert main_compare(["--output", str(tmp_path / "cmp"), *local_flags, flag, str(shared)]) == 2
    line = _error_line(capsys, "openrlhf-cfpo compare: error: ")
    assert f"{flag} {shared} would hold the {what} of several runs" in line


def test_plot_warns_in_one_line_when_a_log_repeats_steps_and_still_plots(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    steps = [1, 2, 3, 2, 3, 4]  # two processes appending to one metrics.jsonl
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "reward": 0.1 * s}) + "\n" for s in steps))
    assert main_plot([str(run), "--output", str(tmp_path / "fig.png")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"warning: {run} logs step 2 again after later steps (two processes wrote it at once?); its curves will zig-zag"
    ]
    assert (tmp_path / "fig.png").exists()


# ------------------------------------------------------------------ 2. a checkpoint folder belongs to one run


def _names(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(checkpoint.PREFIX))


def test_a_new_run_refuses_a_checkpoint_folder_holding_another_runs_checkpoints(local_flags, tmp_path, capsys):
    shared = tmp_path / "shared"
    a = [*local_flags, "--ckpt.output_dir", str(tmp_path / "a"), "--ckpt.path", str(shared), "--ckpt.save_steps", "2"]
    assert main_local(a) == 0
    kept = _names(shared)
    capsys.readouterr()
    assert main_local([*local_flags, "--ckpt.output_dir", str(tmp_path / "b"), "--ckpt.path", str(shared)]) == 2
    line = _error_line(capsys)
    assert line.startswith(
        f"{ERROR}--ckpt.path {shared} holds the checkpoints of the run in {(tmp_path / 'a').resolve()}"
    )
    assert _names(shared) == kept and not (tmp_path / "b" / "metrics.jsonl").exists()
    assert main_local([*a, "--resume"]) == 0  # A's own checkpoints: still A's to resume
    assert _last_line(capsys).startswith("nothing left to train: the run had finished all 6 steps")


def test_resume_refuses_a_checkpoint_folder_holding_another_runs_checkpoints(local_flags, tmp_path, capsys):
    def flags(name, *extra):
        return [*local_flags, "--ckpt.output_dir", str(tmp_path / name), "--ckpt.save_steps", "2", *extra]

    assert main_local(flags("a", "--data.max_samples", "8")) == 0
    assert main_local(flags("b")) == 0
    # B's newest checkpoint where A's are (what B's pruning of a shared folder used to leave A)
    shutil.copytree(tmp_path / "b" / "checkpoints" / "global_step_6", tmp_path / "a" / "checkpoints" / "global_step_6")
    capsys.readouterr()
    assert main_local([*flags("a", "--data.max_samples", "8"), "--resume"]) == 2
    line = _error_line(capsys)
    assert line.startswith(
        f"{ERROR}--ckpt.path {tmp_path / 'a' / 'checkpoints'} holds checkpoints of another run (the run in "
        f"{(tmp_path / 'b').resolve()}: global_step_6), which this run must neither prune nor resume from"
    )


def test_pruning_and_resume_never_touch_another_runs_checkpoints(tmp_path):
    state = {"w": torch.zeros(3)}
    checkpoint.save(str(tmp_path), 1, state, 1, {"run_id": "a", "output_dir": "a", "flags": {}})
    checkpoint.save(str(tmp_path), 2, state, 1, {"run_id": "b", "output_dir": "b", "flags": {}})
    checkpoint.save(str(tmp_path), 3, state, 1, {"run_id": "b", "output_dir": "b", "flags": {}})
    assert _names(tmp_path) == ["global_step_1", "global_step_3"]  # b's max_num 1 pruned b's own step 2 only
    assert checkpoint.newest_first(str(tmp_path), "a") == [tmp_path / "global_step_1"]
    assert checkpoint.latest(str(tmp_path), "b") == tmp_path / "global_step_3"


def test_resume_without_run_config_compares_the_flags_with_the_checkpoints(local_flags, tmp_path, capsys):
    flags = [*local_flags, "--ckpt.output_dir", str(tmp_path / "run"), "--ckpt.save_steps", "2"]
    assert main_local(flags) == 0
    (tmp_path / "run" / "run_config.json").unlink()
    capsys.readouterr()
    assert main_local([*flags, "--resume", "--actor.adam.lr", "1e-2"]) == 2
    assert _error_line(capsys) == (
        f"{ERROR}--resume needs the flags of the interrupted run; these differ: --actor.adam.lr 0.001 -> 0.01"
    )
    assert main_local([*flags, "--resume", "--ckpt.max_num", "3"]) == 0  # where it is stored may change
    assert _last_line(capsys).startswith("nothing left to train")
    assert "run_id" in json.loads((tmp_path / "run" / "run_config.json").read_text())


# ------------------------------------------------------------------ 3. the final model is written, or not finished


def _model_state(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder).state_dict()


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_during_the_final_model_save_leaves_no_half_model_and_resume_writes_it(
    local_flags, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "run"
    real = hf.save_pretrained

    def weights_do_not_fit(obj, folder):
        if hasattr(obj, "state_dict"):
            obj.config.save_pretrained(folder)  # config.json first, as transformers writes it
            _full_disk()
        real(obj, folder)

    monkeypatch.setattr(hf, "save_pretrained", weights_do_not_fit)
    flags = [*local_flags, "--ckpt.output_dir", str(out), "--ckpt.save_steps", "2"]
    assert main_local(flags) == 1
    final = out / "checkpoints" / "global_step_6"
    line = _last_line(capsys)
    assert line.startswith(f"{ERROR}the disk is full: could not write {out / 'model'} (it needs about ")
    assert line.endswith(
        f"the last checkpoint, {final}, is intact and `--resume` continues from it once space is freed"
    )
    assert sorted(p.name for p in out.iterdir() if "model" in p.name) == []  # neither a half model/ nor its temp
    monkeypatch.undo()
    assert main_local([*flags, "--resume"]) == 0
    assert _last_line(capsys).startswith(
        "nothing left to train: the run had finished all 6 steps; wrote its missing model/ from the last checkpoint"
    )
    saved = checkpoint.load(final)["model"]
    assert all(torch.equal(v, saved[k]) for k, v in _model_state(out / "model").items())


def test_resume_of_a_finished_run_whose_model_has_no_weights_writes_them(local_flags, tmp_path, capsys):
    flags = [*local_flags, "--ckpt.output_dir", str(tmp_path / "run")]
    assert main_local(flags) == 0
    (tmp_path / "run" / "model" / "model.safetensors").unlink()  # what a full disk left before model/ was atomic
    capsys.readouterr()
    assert main_local([*flags, "--resume"]) == 0
    assert "wrote its missing model/ from the last checkpoint" in _last_line(capsys)
    assert _model_state(tmp_path / "run" / "model")


def test_a_full_disk_during_a_checkpoint_is_one_line_and_resume_continues(local_flags, tmp_path, capsys, monkeypatch):
    class FillsUp:
        """A state.pt file on a disk with 1000 bytes left."""

        def __init__(self, f):
            self.f, self.written = f, 0

        def write(self, data):
            self.written += len(data)
            if self.written > 1000:
                _full_disk()
            return self.f.write(data)

        def flush(self):
            self.f.flush()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    def opens(path, mode="r", **kwargs):
        f = builtins.open(path, mode, **kwargs)
        return FillsUp(f) if str(path).endswith(f"global_step_4{os.sep}{checkpoint.STATE_FILE}") else f

    monkeypatch.setattr(checkpoint, "open", opens, raising=False)
    out = tmp_path / "run"
    flags = [*local_flags, "--ckpt.output_dir", str(out), "--ckpt.save_steps", "2"]
    assert main_local(flags) == 1
    ckpts = out / "checkpoints"
    line = _last_line(capsys)  # (not torch's "unexpected pos ...", no traceback)
    assert line.startswith(f"{ERROR}the disk is full: could not write {ckpts / 'global_step_4'} (it needs about ")
    assert line.endswith(
        f"the last checkpoint, {ckpts / 'global_step_2'}, is intact and `--resume` continues from it once space is "
        "freed"
    )
    assert _names(ckpts) == ["global_step_2"] and not [p for p in ckpts.iterdir() if p.name.startswith(".tmp")]
    monkeypatch.undo()
    assert main_local([*flags, "--resume"]) == 0
    assert _last_line(capsys).startswith("trained steps 3-6 of 6 in ")
    assert [r["step"] for r in read_metrics(str(out / "metrics.jsonl"))] == list(range(1, 7))


def test_a_full_disk_under_tensorboards_writer_thread_is_one_line_without_its_traceback(
    local_flags, tmp_path, capsys, monkeypatch
):
    from tensorboard.summary.writer import record_writer

    monkeypatch.setattr(record_writer.RecordWriter, "write", _full_disk)
    # Python's own hook, which prints a thread's traceback on stderr (pytest's would collect it as a warning instead).
    monkeypatch.setattr(threading, "excepthook", threading.__excepthook__)
    out = tmp_path / "run"
    assert main_local([*local_flags, "--ckpt.output_dir", str(out)]) == 1
    line = _last_line(capsys)
    assert line == (
        f"{ERROR}the disk is full: could not write {out / 'tensorboard'} (it needs more space; "
        + line.split("it needs more space; ")[1]
    )
    assert line.endswith("no checkpoint was saved, so `--resume` starts from step 0 once space is freed")
