"""`openrlhf-cfpo doctor`: every check's fault line, on CPU, with the probes faked; the real probes where a CPU can."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from openrlhf_cfpo import __version__, doctor
from openrlhf_cfpo.doctor import Disk, Gpu, GpuReport, Probes, RayCluster, RayNode, Toolchain, TorchBuild

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

INSTALLED = {
    "openrlhf-cfpo": "0.1.0",
    "torch": "2.13.0+cu130",
    "nvidia-nccl-cu13": "2.29.7",
    "vllm": "0.29.0",
    "flash-attn": "2.8.3",
    "deepspeed": "0.19.6",
    "ray": "2.55.0",
    "transformers": "5.15.0",
    "trl": "1.16.0",
    "verl": "0.9.1",
    "math-verify": "0.9.0",
    "lm-eval": "0.4.13",
    "alpaca-eval": "0.6.6",
}
REQUIRES = {
    "openrlhf-cfpo": [
        'vllm==0.29.0; extra == "openrlhf"',
        'flash-attn==2.8.3; extra == "openrlhf-cpu"',
        'trl==1.16.0; extra == "trl"',
        "transformers<=5.15.0,>=5.5.3",
    ],
    "torch": ['nvidia-nccl-cu13==2.29.7; platform_system == "Linux"', 'optree>=0.13.0; extra == "optree"'],
    "vllm": ["torch==2.13.0", "transformers>=5.10.4", 'pytest; extra == "test"'],
    "flash-attn": ["torch", "einops"],
}
INSTALLED["einops"] = "0.8.1"
H200 = tuple(Gpu(i, "NVIDIA H200", 139.8, 0.4) for i in range(8))


def healthy(**overrides) -> Probes:
    """An 8xH200 node with an R580 driver and the whole stack installed as the README says; a 2-node Ray cluster."""
    installed = {**INSTALLED, **overrides.pop("installed", {})}
    requires = {**REQUIRES, **overrides.pop("requires", {})}
    node = RayNode("10.0.0.1", 8.0, __version__, "", "2.13.0+cu130")
    probes = dict(
        gpus=lambda: GpuReport("580.65.06", (13, 0), H200),
        torch=lambda: TorchBuild("2.13.0+cu130", "13.0", (2, 29, 7)),
        distribution=installed.get,
        requirements=lambda name: requires.get(name, []) if name in installed else [],
        imports=lambda module: None,
        found=lambda module: True,
        deepspeed_build=lambda: {"installed_ops": {"fused_adam": False}, "accelerator_name": "cuda"},
        toolchain=lambda: Toolchain("/usr/local/cuda-13.0", (13, 0), True),
        disk=lambda path: Disk("/data/runs", 2000.0, True),
        hf_token=lambda: True,
        judge=lambda url, model: None,
        ray_cluster=lambda address: RayCluster((node, node._replace(address="10.0.0.2"))),
        environ={},
    )
    return Probes(**{**probes, **overrides})


def plan(recipe="llama3-rlhf", **kw):
    args = doctor.build_parser().parse_args(["--recipe", recipe] if recipe else [])
    return doctor.plan_from_args(args)._replace(**kw)


def faults(probes, **plan_kw):
    return doctor.run_checks(plan(**plan_kw), probes).faults


# --- a healthy node -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("recipe", sorted(doctor.RECIPES))
def test_a_healthy_node_has_no_faults_for_any_recipe(recipe):
    every_need = tuple(doctor.PACKAGES)
    assert (
        faults(
            healthy(),
            recipe=recipe,
            needs=every_need,
            nodes=2,
            gpus_per_node=8,
            disk_gib=500.0,
            hf_token=True,
            judge_model="gpt-4.1",
        )
        == []
    )


def test_a_healthy_run_prints_one_summary_line_and_exits_0(capsys):
    assert doctor.main(["--recipe", "llama3-rlhf"], probes=healthy()) == 0
    out = capsys.readouterr()
    assert out.err == "" and out.out.count("\n") == 1
    assert (
        out.out.startswith("openrlhf-cfpo doctor: ok (llama3-rlhf")
        and "8x NVIDIA H200" in out.out
        and "NCCL 2.29.7" in out.out
    )


def test_doctor_without_a_recipe_checks_what_every_recipe_shares(capsys):
    shared = plan(recipe=None)
    every = [n for n in doctor.PACKAGES if all(n in r.packages for r in doctor.RECIPES.values())]
    assert shared.needs == tuple(every) and shared.gpus_per_node == 0 and shared.gpu_memory_gib is None
    # what only some recipes need (vLLM, 8 GPUs) is not asked for
    no_vllm = {k: v for k, v in INSTALLED.items() if k != "vllm"}
    assert doctor.main([], probes=healthy(distribution=no_vllm.get, gpus=lambda: None)) == 0
    out = capsys.readouterr().out.splitlines()[-1]
    assert out.startswith("openrlhf-cfpo doctor: ok (what every recipe shares;") and "--recipe NAME" in out
    # what all of them need is: torch, a writable output folder, and a driver that answers if there is one
    broken = healthy(
        torch=lambda: None, disk=lambda p: Disk("/ro", 100.0, False), gpus=lambda: GpuReport(error="NVML: mismatch")
    )
    assert doctor.main([], probes=broken) == 1
    err = capsys.readouterr().err.splitlines()
    assert ["does not answer" in err[0], "torch is not installed" in err[1], "cannot write" in err[2]] == [True] * 3
    assert len(err) == 4 and "for what every recipe shares (--recipe NAME checks one)" in err[3]
    (fault,) = faults(healthy(gpus=lambda: GpuReport("550.90.07", (12, 4), H200)), recipe=None)
    assert "supports CUDA up to 12.4" in fault


def test_our_own_requirements_are_checked_with_or_without_a_recipe():
    probes = healthy(installed={"transformers": "5.4.0"})
    for recipe in (None, "eval"):
        (fault,) = faults(probes, recipe=recipe)
        assert (
            fault.startswith("openrlhf-cfpo 0.1.0 requires transformers")
            and ", not transformers 5.4.0: pip install 'transformers" in fault
        )


# --- GPUs and the driver --------------------------------------------------------------------------------------


def test_a_cpu_only_machine_says_so_in_one_line_when_no_gpu_is_needed(capsys):
    assert doctor.main(["--recipe", "eval", "--gpus", "0"], probes=healthy(gpus=lambda: None)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "openrlhf-cfpo doctor: CPU-only machine (no NVIDIA driver found): GPU checks skipped"
    assert len(out) == 2 and out[1].startswith("openrlhf-cfpo doctor: ok")


def test_no_gpu_where_the_recipe_needs_them_is_one_fault():
    (fault,) = faults(healthy(gpus=lambda: None))
    assert fault.startswith("no NVIDIA GPU here (no nvidia-smi)") and "needs 8 per node" in fault and "R580" in fault


def test_a_driver_that_does_not_answer_asks_for_a_reboot():
    (fault,) = faults(healthy(gpus=lambda: GpuReport(error="NVML: Driver/library version mismatch")))
    assert "Driver/library version mismatch" in fault and "reboot" in fault


def test_a_cuda_12_driver_under_torchs_cuda_13_build_asks_for_r580():
    (fault,) = faults(healthy(gpus=lambda: GpuReport("550.90.07", (12, 4), H200)))
    assert fault == (
        "NVIDIA driver 550.90.07 supports CUDA up to 12.4, torch 2.13.0+cu130 is built for CUDA 13.0: "
        "install an R580-or-newer driver (vLLM 0.29's kernels are CUDA 13 builds too)"
    )


def test_an_older_minor_version_of_the_same_cuda_major_is_enough():
    assert faults(healthy(torch=lambda: TorchBuild("2.13.0+cu132", "13.2", (2, 29, 7)))) == []


def test_a_cpu_torch_on_a_gpu_plan_is_one_fault_not_a_cascade():
    probes = healthy(
        torch=lambda: TorchBuild("2.13.0+cpu", None, None),
        imports=lambda module: "ImportError: libc10_cuda.so: cannot open shared object file",
    )
    (fault,) = faults(probes)
    assert "torch 2.13.0+cpu is a CPU build" in fault and "pip install --force-reinstall torch==2.13.0" in fault


def test_fewer_visible_gpus_than_planned_names_both_counts(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    (fault,) = faults(healthy(gpus=lambda: GpuReport("580.65.06", (13, 0), H200[:4])))
    assert fault.startswith("4 GPU(s) visible with CUDA_VISIBLE_DEVICES=0,1,2,3, the llama3-rlhf plan needs 8 per node")
    assert "--gpus-per-node 4" in fault


def test_gpus_smaller_than_the_plan_are_listed_in_one_line():
    small = tuple(Gpu(i, "NVIDIA A100-SXM4-40GB", 39.4, 0.4) for i in range(8))
    (fault,) = faults(healthy(gpus=lambda: GpuReport("580.65.06", (13, 0), small)))
    assert fault.startswith(
        "GPU 0, 1, 2, 3, 4, 5, 6, 7 (NVIDIA A100-SXM4-40GB, 39.4 GiB) has less than the 79 GiB per GPU"
    )
    assert "--skip-doctor" in fault


def test_gpu_memory_flag_replaces_the_recipes_requirement():
    small = tuple(Gpu(i, "NVIDIA L40S", 44.4, 0.4) for i in range(8))
    probes = healthy(gpus=lambda: GpuReport("580.65.06", (13, 0), small))
    assert faults(probes, gpu_memory_gib=40.0) == []


def test_gpus_held_by_other_processes_are_a_fault():
    busy = H200[:2] + tuple(g._replace(used_gib=60.5) for g in H200[2:4]) + H200[4:]
    (fault,) = faults(healthy(gpus=lambda: GpuReport("580.65.06", (13, 0), busy)))
    assert fault.startswith("GPU 2, 3 already have 60.5, 60.5 GiB in use by other processes")


# --- packages -------------------------------------------------------------------------------------------------


def test_each_missing_package_is_a_line_naming_the_extra_that_brings_it():
    installed = {**INSTALLED}
    del installed["vllm"], installed["trl"]
    probes = healthy(distribution=installed.get)
    assert faults(probes, needs=("vllm", "trl")) == [
        "vllm is not installed: pip install --no-build-isolation '.[openrlhf]' (docs/gpu-node.md, install)",
        "trl is not installed: pip install --no-build-isolation '.[trl]' (docs/gpu-node.md, install)",
    ]


def test_a_package_off_our_pin_is_a_fault():
    (fault,) = faults(healthy(installed={"vllm": "0.30.1"}), needs=("vllm",))
    assert fault == "vllm 0.30.1 is installed, openrlhf-cfpo pins vllm==0.29.0: pip install 'vllm==0.29.0'"


def test_our_pins_apply_only_where_the_recipes_environment_installs_their_extra():
    probes = healthy(
        installed={"ray": "2.60.0"}, requires={"openrlhf-cfpo": ['ray[default]==2.55.0; extra == "openrlhf"']}
    )
    (fault,) = faults(probes, needs=("ray",))
    assert fault == "ray 2.60.0 is installed, openrlhf-cfpo pins ray==2.55.0: pip install 'ray==2.55.0'"
    assert faults(probes, recipe="qwen25-math-verl", needs=("ray",)) == []  # verl's environment brings its own Ray


def test_vllm_built_for_another_torch_is_found_from_its_metadata():
    (fault,) = faults(healthy(installed={"torch": "2.12.0"}), needs=("vllm",))
    assert fault == "vllm 0.29.0 requires torch==2.13.0, not torch 2.12.0: pip install 'torch==2.13.0'"


def test_a_missing_requirement_of_a_package_is_a_fault():
    installed = {**INSTALLED}
    del installed["einops"]
    (fault,) = faults(healthy(distribution=installed.get), needs=("flash_attn",))
    assert fault == "flash-attn 2.8.3 requires einops, which is not installed: pip install 'einops'"


def test_a_flash_attn_without_its_cuda_extension_says_how_to_build_it():
    probes = healthy(imports=lambda module: "missing" if module == "flash_attn_2_cuda" else None)
    (fault,) = faults(probes)
    assert fault.startswith("flash-attn 2.8.3 has no CUDA extension")
    assert "FLASH_ATTN_CUDA_ARCHS=90 FLASH_ATTENTION_FORCE_BUILD=TRUE pip install --no-build-isolation" in fault


def test_a_flash_attn_built_for_another_torch_is_caught_by_loading_its_extension():
    error = "ImportError: flash_attn_2_cuda.so: undefined symbol: _ZN3c104cuda9SetDeviceEi"
    (fault,) = faults(healthy(imports=lambda module: error))
    assert fault.startswith(f"flash-attn 2.8.3's CUDA extension does not load with torch 2.13.0+cu130 ({error})")


def test_a_package_whose_module_cannot_be_found_is_a_fault():
    (fault,) = faults(healthy(found=lambda module: module != "ray"), needs=("ray",))
    assert fault == "ray 2.55.0 is installed but `import ray` finds nothing: reinstall it"


def test_deepspeed_without_nvcc_cannot_compile_fused_adam_at_the_first_step():
    (fault,) = faults(healthy(toolchain=lambda: Toolchain(None, None, True)), needs=("deepspeed",))
    assert fault.startswith(
        "DeepSpeed compiles its FusedAdam optimizer at the first training step and CUDA_HOME is unset"
    )
    assert "cuda-toolkit[nvcc,cccl]==13.0.*" in fault


def test_deepspeed_with_an_nvcc_of_another_cuda_major_is_a_fault():
    (fault,) = faults(healthy(toolchain=lambda: Toolchain("/usr/local/cuda-12.4", (12, 4), True)), needs=("deepspeed",))
    assert "and nvcc 12.4 at /usr/local/cuda-12.4 is not CUDA 13, torch 2.13.0+cu130's" in fault


def test_deepspeed_without_ninja_is_a_fault():
    (fault,) = faults(healthy(toolchain=lambda: Toolchain("/usr/local/cuda", (13, 0), False)), needs=("deepspeed",))
    assert fault == "DeepSpeed compiles its FusedAdam optimizer with ninja, which is not installed: pip install ninja"


def test_deepspeed_ops_prebuilt_for_another_torch_are_a_fault_and_need_no_nvcc():
    build = {
        "installed_ops": {"fused_adam": True},
        "accelerator_name": "cuda",
        "torch_info": {"version": "2.12", "cuda_version": "12.8"},
    }
    probes = healthy(deepspeed_build=lambda: build, toolchain=lambda: Toolchain(None, None, False))
    (fault,) = faults(probes, needs=("deepspeed",))
    assert fault.startswith("DeepSpeed's prebuilt ops are for torch 2.12 / CUDA 12.8, this is torch 2.13 / CUDA 13.0")
    assert "DS_BUILD_FUSED_ADAM=1 DS_ACCELERATOR=cuda" in fault and "deepspeed==0.19.6" in fault
    matching = {**build, "torch_info": {"version": "2.13", "cuda_version": "13.0"}}
    probes.deepspeed_build = lambda: matching
    assert faults(probes, needs=("deepspeed",)) == []


def test_a_torch_without_nccl_is_a_fault():
    (fault,) = faults(healthy(torch=lambda: TorchBuild("2.13.0+cu130", "13.0", None)), needs=("nccl",))
    assert fault.startswith("torch 2.13.0+cu130 has no NCCL")


def test_torch_loading_another_nccl_than_its_wheel_is_a_fault():
    (fault,) = faults(healthy(torch=lambda: TorchBuild("2.13.0+cu130", "13.0", (2, 21, 5))), needs=("nccl",))
    assert fault.startswith("torch loads NCCL 2.21.5, not its nvidia-nccl wheel's 2.29.7") and "LD_PRELOAD" in fault


# --- disk, token, judge ---------------------------------------------------------------------------------------


def test_too_little_disk_for_the_checkpoints_is_a_fault():
    (fault,) = faults(healthy(disk=lambda path: Disk("/data", 120.4, True)), disk_gib=340.0, output_dir="/data/runs")
    assert fault.startswith("/data has 120 GiB free, the llama3-rlhf plan keeps about 340 GiB of checkpoints there")


def test_an_output_folder_that_cannot_be_written_is_a_fault():
    (fault,) = faults(healthy(disk=lambda path: Disk("/readonly", 5000.0, False)), output_dir="/readonly/runs")
    assert fault.startswith("cannot write to /readonly (for --output-dir /readonly/runs)")


def test_gated_data_without_a_hugging_face_token_is_a_fault():
    (fault,) = faults(healthy(hf_token=lambda: False), recipe="eval", hf_token=True)
    assert "HF_TOKEN" in fault and "GPQA" in fault
    assert faults(healthy(hf_token=lambda: False), recipe="eval") == []  # only asked for when gated data is read


def test_the_judge_probes_reason_is_the_fault_line():
    seen = []

    def judge(url, model):
        seen.append((url, model))
        return "no judge API key: set OPENAI_API_KEY"

    assert faults(
        healthy(judge=judge), recipe="eval", judge_base_url="http://judge:8000/v1", judge_model="gpt-4.1"
    ) == ["no judge API key: set OPENAI_API_KEY"]
    assert seen == [("http://judge:8000/v1", "gpt-4.1")]


# --- the Ray cluster ------------------------------------------------------------------------------------------


def test_a_single_node_run_without_ray_address_does_not_touch_ray():
    def no_cluster(address):
        raise AssertionError("the cluster was probed")

    assert faults(healthy(ray_cluster=no_cluster)) == []


def test_no_cluster_for_several_nodes_says_how_to_start_one():
    (fault,) = faults(
        healthy(ray_cluster=lambda a: RayCluster(error="ConnectionError: Could not find any running Ray instance.")),
        nodes=2,
    )
    assert fault.startswith("cannot reach a running Ray cluster (address 'auto') for --nodes 2")
    assert "ray start --head" in fault and "docs/gpu-node.md, multi-node" in fault


def test_ray_address_alone_makes_the_cluster_checked():
    seen = []
    probes = healthy(
        ray_cluster=lambda a: seen.append(a) or RayCluster(error="boom"), environ={"RAY_ADDRESS": "ray://head:10001"}
    )
    (fault,) = faults(probes)
    assert seen == ["ray://head:10001"] and fault.startswith("cannot reach RAY_ADDRESS=ray://head:10001")


def test_fewer_cluster_nodes_than_planned_is_a_fault():
    node = RayNode("10.0.0.1", 8.0, __version__, "", "2.13.0+cu130")
    (fault,) = faults(healthy(ray_cluster=lambda a: RayCluster((node,))), nodes=2)
    assert fault.startswith("the Ray cluster has 1 of the 2 nodes") and "ray start --address=HEAD_IP:6379" in fault


def test_a_node_without_the_package_or_at_another_version_is_named():
    nodes = (
        RayNode("10.0.0.1", 8.0, __version__, "", "2.13.0+cu130"),
        RayNode("10.0.0.2", 8.0, None, "ModuleNotFoundError: No module named 'openrlhf_cfpo'", "2.13.0+cu130"),
        RayNode("10.0.0.3", 8.0, "0.0.9", "", "2.12.0+cu128"),
    )
    found = faults(healthy(ray_cluster=lambda a: RayCluster(nodes)), nodes=3)
    assert found == [
        "Ray node 10.0.0.2 cannot import openrlhf_cfpo (ModuleNotFoundError: No module named 'openrlhf_cfpo'): "
        "install it there (one venv everywhere)",
        f"Ray node 10.0.0.3 has openrlhf_cfpo 0.0.9, this node {__version__}: install one version everywhere",
        "Ray node 10.0.0.3 has torch 2.12.0+cu128, this node 2.13.0+cu130: use one venv or image on every node",
    ]


def test_cluster_nodes_without_their_gpus_are_a_fault():
    nodes = (RayNode("10.0.0.1", 8.0, __version__), RayNode("10.0.0.2", 0.0, __version__))
    (fault,) = faults(healthy(ray_cluster=lambda a: RayCluster(nodes)), nodes=2)
    assert fault.startswith("Ray node(s) 10.0.0.2 (0 GPUs) offer under the 8 GPUs per node planned")
    assert "ray start ... --num-gpus 8" in fault


# --- one run lists every fault; the command line --------------------------------------------------------------


def test_every_fault_is_listed_in_one_run_one_line_each(capsys):
    probes = healthy(
        gpus=lambda: GpuReport("550.90.07", (12, 4), H200[:4]),
        installed={"vllm": "0.30.1"},
        disk=lambda path: Disk("/data", 10.0, True),
        hf_token=lambda: False,
    )
    assert doctor.main(["--recipe", "llama3-rlhf", "--disk-gib", "340", "--hf-token"], probes=probes) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 6 and all(line.startswith("openrlhf-cfpo doctor: ") for line in err)
    assert [
        k
        for k in ("GPU(s) visible", "supports CUDA up to 12.4", "vllm 0.30.1", "GiB free", "HF_TOKEN")
        if not any(k in line for line in err)
    ] == []
    assert err[-1] == (
        "openrlhf-cfpo doctor: 5 problem(s) for llama3-rlhf; the scripts skip this check with "
        "--skip-doctor or OPENRLHF_CFPO_SKIP_DOCTOR=1"
    )


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--recipe", "llama3"], "argument --recipe: invalid choice: 'llama3'"),
        (["--recipe", "eval", "--needs", "vllm,flashattn"], "unknown flashattn; known: flash_attn, vllm,"),
        (["--recipe", "eval", "--gpus", "-1"], "must be 0 or more (got -1)"),
        (["--recipe", "eval", "--nodes", "0"], "must be 1 or more (got 0)"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        doctor.main(argv, probes=healthy())
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and message in err


def test_needs_replaces_the_recipes_list_and_gpus_alias_sets_the_count():
    args = doctor.build_parser().parse_args(["--recipe", "eval", "--needs", "vllm,lm_eval", "--gpus", "1"])
    p = doctor.plan_from_args(args)
    assert p.needs == ("vllm", "lm_eval") and p.gpus_per_node == 1 and p.gpu_memory_gib is None
    args = doctor.build_parser().parse_args(
        ["--recipe", "llama3-rlhf", "--gpus-per-node", "4", "--gpu-memory-gib", "40"]
    )
    p = doctor.plan_from_args(args)
    assert p.needs == doctor.RECIPES["llama3-rlhf"].packages and p.gpus_per_node == 4 and p.gpu_memory_gib == 40


def test_the_skip_variable_skips_with_one_line(monkeypatch, capsys):
    monkeypatch.setenv("OPENRLHF_CFPO_SKIP_DOCTOR", "1")
    assert doctor.main(["--recipe", "llama3-rlhf"], probes=healthy(gpus=lambda: None)) == 0
    assert capsys.readouterr().out == "openrlhf-cfpo doctor: skipped (OPENRLHF_CFPO_SKIP_DOCTOR=1)\n"


def test_doctor_on_this_cpu_machine_takes_seconds_through_both_entry_points(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "OPENRLHF_CFPO_SKIP_DOCTOR", "CUDA_HOME")}
    start = time.monotonic()
    cpu = subprocess.run(
        [
            sys.executable,
            "-m",
            "openrlhf_cfpo.doctor",
            "--recipe",
            "eval",
            "--gpus",
            "0",
            "--output-dir",
            str(tmp_path / "a" / "b"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    gpu = subprocess.run(
        [sys.executable, "-m", "openrlhf_cfpo.cli.main", "doctor", "--recipe", "llama3-rlhf", "--needs", "ray"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    elapsed = time.monotonic() - start
    assert cpu.returncode == 0, cpu.stderr
    assert (
        cpu.stdout.splitlines()[0]
        == "openrlhf-cfpo doctor: CPU-only machine (no NVIDIA driver found): GPU checks skipped"
    )
    assert gpu.returncode == 1 and gpu.stdout == ""
    assert gpu.stderr.splitlines()[0].startswith("openrlhf-cfpo doctor: no NVIDIA GPU here")
    assert elapsed < 30, elapsed


# --- the real probes, where a CPU machine has something to read -----------------------------------------------


def test_parse_nvidia_smi_reads_the_driver_cuda_version_and_each_gpu(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    header = "| NVIDIA-SMI 580.65.06    Driver Version: 580.65.06    CUDA Version: 13.0     |"
    query = "0, NVIDIA H200, 143771, 512, 580.65.06\n1, NVIDIA H200, 143771, 70000, 580.65.06\n"
    report = doctor.parse_nvidia_smi(header, query)
    assert report.driver_version == "580.65.06" and report.driver_cuda == (13, 0)
    assert [(g.index, g.name, round(g.total_gib, 1), round(g.used_gib, 1)) for g in report.gpus] == [
        (0, "NVIDIA H200", 140.4, 0.5),
        (1, "NVIDIA H200", 140.4, 68.4),
    ]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert [g.index for g in doctor.parse_nvidia_smi(header, query).gpus] == [1]


def test_probe_disk_measures_the_nearest_existing_parent(tmp_path):
    disk = Probes().disk(str(tmp_path / "not" / "yet" / "there"))
    assert disk.path == str(tmp_path) and disk.writable and disk.free_gib > 0


def test_probe_deepspeed_build_reads_what_deepspeed_recorded_without_importing_it():
    pytest.importorskip("deepspeed", reason="needs the openrlhf extra")
    code = (
        "import sys; from openrlhf_cfpo.doctor import Probes; b = Probes().deepspeed_build(); "
        "print(sorted(b), 'fused_adam' in b['installed_ops'], 'deepspeed' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert out.split("] ")[1].strip() == "True False" and "'torch_info'" in out


def test_probe_import_reports_a_missing_module_and_an_import_error(tmp_path, monkeypatch):
    (tmp_path / "broken_ext_for_doctor.py").write_text("raise ImportError('undefined symbol: _ZN3c10')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert Probes().imports("no_such_module_for_doctor") == "missing"
    assert Probes().imports("broken_ext_for_doctor") == "ImportError: undefined symbol: _ZN3c10"
    assert Probes().imports("json") is None


class _ModelsEndpoint(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        status = 200 if self.headers.get("Authorization") == "Bearer good" else 401
        body = json.dumps(
            {"object": "list", "data": []} if status == 200 else {"error": {"message": "bad key"}}
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_probe_judge_uses_the_eval_suites_preflight_against_a_local_endpoint(monkeypatch):
    pytest.importorskip("openai", reason="needs the eval extra")
    server = HTTPServer(("127.0.0.1", 0), _ModelsEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/v1"
    try:
        monkeypatch.setenv("OPENAI_API_KEY", "good")
        assert Probes().judge(url, "judge") is None
        monkeypatch.setenv("OPENAI_API_KEY", "bad")
        assert "rejected the API key (401)" in Probes().judge(url, "judge")
        monkeypatch.delenv("OPENAI_API_KEY")
        assert Probes().judge(url, "judge").startswith("no judge API key")
    finally:
        server.shutdown()
        server.server_close()
    monkeypatch.setenv("OPENAI_API_KEY", "good")
    start = time.monotonic()
    assert "cannot reach the judge endpoint" in Probes().judge(url, "judge")  # the server is gone
    assert time.monotonic() - start < 30


def test_probe_ray_cluster_runs_one_task_per_node_that_reports_the_package():
    pytest.importorskip("ray", reason="needs the openrlhf extra")
    code = (
        "import json, ray\n"
        "ray.init(num_cpus=1, include_dashboard=False, logging_level='ERROR')\n"
        "from openrlhf_cfpo.doctor import Probes\n"
        "ours, absent = Probes().ray_cluster(None), Probes().ray_cluster(None, module='no_such_module_for_doctor')\n"
        "print(json.dumps([[n.package_version, n.import_error, n.torch_version] for n in ours.nodes + absent.nodes]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_TMPDIR"] = ray_tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # Ray's unix sockets need a short path
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=240)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (ours, absent) = json.loads(proc.stdout.strip().splitlines()[-1])
    import torch

    from openrlhf_cfpo import __version__

    assert ours == [__version__, "", torch.__version__]
    assert absent[0] is None and absent[1] == "ModuleNotFoundError: No module named 'no_such_module_for_doctor'"


def test_every_doc_section_a_fault_points_to_exists():
    import inspect
    import re

    pointers = set(re.findall(r"\((docs/[\w.-]+), ([\w -]+)\)", inspect.getsource(doctor)))
    pointers.add(tuple(doctor.INSTALL_DOC.split(", ")))
    assert {section for _, section in pointers} == {"install", "multi-node"}
    for page, section in pointers:
        with open(os.path.join(ROOT, page), encoding="utf-8") as f:
            assert any(line.startswith("#") and section in line.lower() for line in f), (page, section)


def test_the_train_recipes_defaults_are_the_recipes_modules_and_repeated_judge_models_parse():
    from openrlhf_cfpo import recipes

    for name, node in recipes.NODE_NEEDS.items():
        plan = doctor.plan_from_args(doctor.build_parser().parse_args(["--recipe", name]))
        assert plan.needs == node.packages and plan.gpu_memory_gib == node.gpu_memory_gib
    args = doctor.build_parser().parse_args(["--recipe", "eval", "--judge-model", "gpt-4.1", "--judge-model", "gpt-4"])
    assert doctor.plan_from_args(args).judge_model == "gpt-4.1"
