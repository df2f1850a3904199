"""`openrlhf-cfpo doctor`: find, in seconds and before Ray starts or a model loads, what would stop a recipe here.

Every fact comes from a *probe*: a small function that reads NVML or nvidia-smi, package metadata, the file
system, a socket or the Ray cluster (the ``Probes`` fields; the tests replace them). The *checks* compare
those facts with the recipe's plan and return faults, each one line saying what is wrong and what to do;
every check runs, so one run lists every fault. Exit status 0: nothing found; 1: faults; 2: bad flags.

CUDA is never initialised here: the GPU facts come from NVML / nvidia-smi, torch is imported only for
``torch.version.cuda`` and NCCL's version (neither touches a device), and flash-attn's extension is loaded
(linking it checks it was built for this torch; loading does not create a CUDA context). The doctor is a
process of its own in the train scripts anyway, so a vLLM engine started later forks from a clean parent.
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from openrlhf_cfpo import recipes as recipe_plans

SKIP_ENV = "OPENRLHF_CFPO_SKIP_DOCTOR"
PACKAGE = "openrlhf-cfpo"
# The CUDA 13 driver branch: torch 2.13.0's default wheel and vLLM 0.29's kernels are CUDA 13 builds.
DRIVER_FLOOR = "R580"
# Memory other processes may hold on a GPU (a CUDA context, a monitoring agent) before it counts as busy.
BUSY_GIB = 2.0
RAY_TIMEOUT_S = 60.0
JUDGE_TIMEOUT_S = 10.0
INSTALL_DOC = "README, GPU quick start"


@dataclass(frozen=True)
class Need:
    """Something a recipe imports: the distribution pip installs, the module it imports, the extra that brings it."""

    distribution: str
    module: str
    extra: str


NEEDS = {
    "flash_attn": Need("flash-attn", "flash_attn", "openrlhf"),
    "vllm": Need("vllm", "vllm", "openrlhf"),
    "deepspeed": Need("deepspeed", "deepspeed", "openrlhf"),
    "ray": Need("ray", "ray", "openrlhf"),
    "nccl": Need("torch", "torch", "openrlhf"),  # torch's own NCCL (nvidia-nccl-cu13)
    "trl": Need("trl", "trl", "trl"),
    "verl": Need("verl", "verl", "verl"),
    "math_verify": Need("math-verify", "math_verify", "reasoning"),
    "lm_eval": Need("lm-eval", "lm_eval", "eval"),
    "alpaca_eval": Need("alpaca-eval", "alpaca_eval", "eval"),
}


# The jobs' packages, extras and GPU memory are the recipes module's (the scripts pass the same values).
RECIPES = recipe_plans.NODE_NEEDS


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    total_gib: float
    used_gib: float


@dataclass(frozen=True)
class GpuReport:
    """The NVIDIA driver's view of this node. ``error``: the driver is there but does not answer."""

    driver_version: str = ""
    driver_cuda: tuple[int, int] | None = None  # the newest CUDA the driver supports
    gpus: tuple[Gpu, ...] = ()
    error: str = ""


@dataclass(frozen=True)
class TorchBuild:
    version: str
    cuda: str | None  # torch.version.cuda; None for a CPU build
    nccl: tuple[int, ...] | None  # the NCCL torch loads; None without one


@dataclass(frozen=True)
class Toolchain:
    """What compiles CUDA code at run time (DeepSpeed's FusedAdam): nvcc under CUDA_HOME, and ninja."""

    cuda_home: str | None
    nvcc_version: tuple[int, int] | None
    ninja: bool


@dataclass(frozen=True)
class Disk:
    path: str  # the folder measured: the output folder or its nearest existing parent
    free_gib: float
    writable: bool


@dataclass(frozen=True)
class RayNode:
    """What a tiny task found on one node of the Ray cluster."""

    address: str
    gpus: float  # the node's GPU resource
    package_version: str | None  # openrlhf_cfpo.__version__, None if the import failed
    import_error: str = ""
    torch_version: str | None = None


@dataclass(frozen=True)
class RayCluster:
    nodes: tuple[RayNode, ...] = ()
    error: str = ""  # could not connect, or the tasks did not answer


# ---------------------------------------------------------------------------------------------------------------
# Probes: each reads one kind of fact and never raises for a missing thing (it reports it).


def probe_gpus() -> GpuReport | None:
    """NVML first (no CUDA context), nvidia-smi otherwise; None when this machine has no NVIDIA driver."""
    try:
        with (
            warnings.catch_warnings()
        ):  # the `pynvml` shim OpenRLHF requires warns on import; nvidia-ml-py is the module
            warnings.simplefilter("ignore")
            import pynvml
    except ImportError:
        pynvml = None
    if pynvml is not None:
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError_LibraryNotFound:
            return _probe_gpus_with_nvidia_smi()
        except pynvml.NVMLError as e:
            if isinstance(e, getattr(pynvml, "NVMLError_DriverNotLoaded", ())) and not shutil.which("nvidia-smi"):
                return None
            return GpuReport(error=f"NVML: {e}")
        try:
            driver = _text(pynvml.nvmlSystemGetDriverVersion())
            cuda = pynvml.nvmlSystemGetCudaDriverVersion_v2()
            gpus = []
            for index in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
                gpus.append(
                    Gpu(index, _text(pynvml.nvmlDeviceGetName(handle)), memory.total / 2**30, memory.used / 2**30)
                )
            return GpuReport(driver, (cuda // 1000, cuda % 1000 // 10), tuple(_visible(gpus)))
        except pynvml.NVMLError as e:
            return GpuReport(error=f"NVML: {e}")
        finally:
            pynvml.nvmlShutdown()
    return _probe_gpus_with_nvidia_smi()


def _probe_gpus_with_nvidia_smi() -> GpuReport | None:
    if not shutil.which("nvidia-smi"):
        return None
    try:
        header = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30)
        query = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=index,name,memory.total,memory.used,driver_version",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return GpuReport(error=f"nvidia-smi: {e}")
    if query.returncode != 0:
        said = (query.stdout + query.stderr).strip().splitlines()
        return GpuReport(error=f"nvidia-smi: {said[-1] if said else f'exit status {query.returncode}'}")
    return parse_nvidia_smi(header.stdout, query.stdout)


def parse_nvidia_smi(header: str, query: str) -> GpuReport:
    """nvidia-smi's banner (for "CUDA Version: X.Y") and its csv GPU query, as a ``GpuReport``."""
    cuda = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", header)
    gpus, driver = [], ""
    for line in query.strip().splitlines():
        index, name, total_mib, used_mib, driver = (part.strip() for part in line.split(","))
        gpus.append(Gpu(int(index), name, float(total_mib) / 1024, float(used_mib) / 1024))
    return GpuReport(driver, (int(cuda.group(1)), int(cuda.group(2))) if cuda else None, tuple(_visible(gpus)))


def _visible(gpus: list[Gpu]) -> list[Gpu]:
    """The GPUs CUDA_VISIBLE_DEVICES leaves to this process's children (by index; UUIDs keep all)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None or any(part.strip().startswith(("GPU-", "MIG-")) for part in visible.split(",")):
        return gpus
    indices = [int(part) for part in visible.split(",") if part.strip().lstrip("-").isdigit()]
    chosen = []
    for i in indices:
        if i < 0:  # CUDA stops at the first invalid index
            break
        chosen += [g for g in gpus if g.index == i]
    return chosen


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def probe_torch() -> TorchBuild | None:
    """torch's version, CUDA build and NCCL; neither call initialises CUDA."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    try:
        nccl = tuple(torch.cuda.nccl.version())
    except (AttributeError, RuntimeError):
        nccl = None
    return TorchBuild(torch.__version__, torch.version.cuda, nccl)


def probe_distribution(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def probe_requirements(name: str) -> list[str]:
    """A distribution's Requires-Dist lines (empty if it is not installed)."""
    try:
        return importlib.metadata.requires(name) or []
    except importlib.metadata.PackageNotFoundError:
        return []


def probe_import(module: str) -> str | None:
    """None if the module imports, else the error in one line ("missing" if there is no such module)."""
    try:
        if importlib.util.find_spec(module) is None:
            return "missing"
        importlib.import_module(module)
    except Exception as e:  # an extension built for another torch raises ImportError / OSError
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return None


def probe_found(module: str) -> bool:
    """Whether a module can be found, without importing it (vLLM, DeepSpeed and Ray take seconds to import)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def probe_deepspeed_build() -> dict | None:
    """What DeepSpeed recorded when it was installed (``git_version_info_installed.py``), read without importing it."""
    spec = importlib.util.find_spec("deepspeed")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "git_version_info_installed.py"
    if not path.exists():
        return None
    values = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return values


def probe_toolchain() -> Toolchain:
    """CUDA_HOME as torch's cpp_extension finds it (CUDA_HOME, CUDA_PATH, nvcc on PATH, /usr/local/cuda)."""
    home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if not home and shutil.which("nvcc"):
        home = str(Path(shutil.which("nvcc")).resolve().parent.parent)
    if not home and Path("/usr/local/cuda").exists():
        home = "/usr/local/cuda"
    version = None
    nvcc = Path(home or "", "bin", "nvcc")
    if home and nvcc.exists():
        try:
            out = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True, timeout=30).stdout
            found = re.search(r"release (\d+)\.(\d+)", out)
            version = (int(found.group(1)), int(found.group(2))) if found else None
        except (OSError, subprocess.TimeoutExpired):
            version = None
    ninja = bool(shutil.which("ninja")) or probe_found("ninja")
    return Toolchain(home, version, ninja)


def probe_disk(output_dir: str) -> Disk:
    """Free space and write access at the output folder, or at its nearest existing parent."""
    path = Path(output_dir).expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return Disk(str(path), shutil.disk_usage(path).free / 2**30, os.access(path, os.W_OK | os.X_OK))


def probe_hf_token() -> bool:
    """HF_TOKEN set, or a token saved by ``hf auth login``."""
    if os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN"):
        return True
    try:
        from huggingface_hub import get_token
    except ImportError:
        return False
    return bool(get_token())


def probe_judge(base_url: str | None, model: str | None) -> str | None:
    """None if the judge endpoint answers with the key set; else the eval suite's own one-line reason."""
    try:
        from openrlhf_cfpo.eval.judge import Judge, JudgeConfig

        judge = Judge(JudgeConfig(model or "", base_url=base_url))
        return judge.key_problem() or judge.endpoint_problem(timeout_s=JUDGE_TIMEOUT_S)
    except ImportError as e:
        return f"the judge check needs the eval extra ({e}): pip install '.[eval]'"


def probe_ray_cluster(
    address: str | None, module: str = "openrlhf_cfpo", timeout_s: float = RAY_TIMEOUT_S
) -> RayCluster:
    """Connect to the running cluster and run one tiny task on every alive node: does ``module`` import there, at
    which version? The task is pickled by value (it references nothing of ours), so it runs where ours is missing."""
    try:
        import ray
    except ImportError as e:
        return RayCluster(error=f"ray is not importable ({e})")
    started_here = not ray.is_initialized()
    try:
        if started_here:
            # Ray Client (ray://) would forward these to the server's ray.init with a warning: quiet only locally
            quiet = {} if (address or "").startswith("ray://") else dict(logging_level="ERROR", log_to_driver=False)
            ray.init(address=address or "auto", **quiet)
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        def report(module_name):
            import importlib
            import importlib.metadata

            try:
                version = getattr(importlib.import_module(module_name), "__version__", "unknown")
                error = ""
            except Exception as e:  # report it, whatever it is: the driver prints it as the node's fault
                version, error = None, f"{type(e).__name__}: {e}"
            try:
                torch_version = importlib.metadata.version("torch")
            except importlib.metadata.PackageNotFoundError:
                torch_version = None
            return version, error, torch_version

        task = ray.remote(num_cpus=0)(report)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        refs = [
            task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(module)
            for n in nodes
        ]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
        out = []
        for node, ref in zip(nodes, refs):
            address_ = node.get("NodeManagerAddress", node["NodeID"][:8])
            gpus = float(node.get("Resources", {}).get("GPU", 0))
            if ref in ready:
                version, error, torch_version = ray.get(ref)
                out.append(RayNode(address_, gpus, version, error, torch_version))
            else:
                out.append(RayNode(address_, gpus, None, f"no answer within {timeout_s:.0f} s"))
        return RayCluster(tuple(out))
    except Exception as e:
        return RayCluster(error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    finally:
        if started_here and ray.is_initialized():
            ray.shutdown()


def package_version() -> str:
    from openrlhf_cfpo import __version__

    return __version__


@dataclass
class Probes:
    """The facts the checks read; tests replace any of them."""

    gpus: Callable[[], GpuReport | None] = probe_gpus
    torch: Callable[[], TorchBuild | None] = probe_torch
    distribution: Callable[[str], str | None] = probe_distribution
    requirements: Callable[[str], list] = probe_requirements
    imports: Callable[[str], str | None] = probe_import
    found: Callable[[str], bool] = probe_found
    deepspeed_build: Callable[[], dict | None] = probe_deepspeed_build
    toolchain: Callable[[], Toolchain] = probe_toolchain
    disk: Callable[[str], Disk] = probe_disk
    hf_token: Callable[[], bool] = probe_hf_token
    judge: Callable[[str | None, str | None], str | None] = probe_judge
    ray_cluster: Callable[[str | None], RayCluster] = probe_ray_cluster
    package_version: Callable[[], str] = package_version
    environ: dict = field(default_factory=lambda: os.environ)


# ---------------------------------------------------------------------------------------------------------------
# The plan and the checks. Each check returns fault lines; ``notes`` are printed as information.


@dataclass
class Plan:
    recipe: str
    nodes: int = 1
    gpus_per_node: int = 0
    gpu_memory_gib: float | None = None
    disk_gib: float | None = None
    output_dir: str = "."
    needs: tuple[str, ...] = ()
    hf_token: bool = False
    judge_base_url: str | None = None
    judge_model: str | None = None


@dataclass
class Findings:
    faults: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    gpus: GpuReport | None = None
    torch: TorchBuild | None = None


def _pins(probes: Probes, extras) -> dict:
    """Our own exact pins in ``extras``, read from the installed package's metadata (setup.py is their one place):
    {name: specifier}."""
    from packaging.requirements import Requirement

    pins = {}
    for line in probes.requirements(PACKAGE):
        req = Requirement(line)
        applies = req.marker is None or any(req.marker.evaluate({"extra": extra}) for extra in extras)
        if applies and any(s.operator == "==" for s in req.specifier):
            pins[_canonical(req.name)] = req.specifier
    return pins


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _extra_hint(need: Need) -> str:
    return f"pip install --no-build-isolation '.[{need.extra}]' ({INSTALL_DOC})"


def check_gpus(plan: Plan, found: Findings) -> None:
    report = found.gpus
    if plan.gpus_per_node == 0:
        if report is None:
            found.notes.append("CPU-only machine (no NVIDIA driver found): GPU checks skipped")
        return
    if report is None:
        found.faults.append(
            f"no NVIDIA GPU on this machine (no NVML library, no nvidia-smi), the {plan.recipe} recipe needs "
            f"{plan.gpus_per_node} per node: run it on a GPU node with an NVIDIA driver ({DRIVER_FLOOR} or newer)"
        )
        return
    if report.error:
        found.faults.append(
            f"the NVIDIA driver does not answer ({report.error}): after a driver upgrade reboot the node "
            "(or reload the nvidia kernel modules); check `nvidia-smi` works"
        )
        return
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if len(report.gpus) < plan.gpus_per_node:
        where = f" with CUDA_VISIBLE_DEVICES={visible}" if visible is not None else ""
        found.faults.append(
            f"{len(report.gpus)} GPU(s) visible{where}, the {plan.recipe} plan needs {plan.gpus_per_node} per node: "
            f"pass --gpus-per-node {len(report.gpus)} to the script (the batch sizes must still divide) or make the GPUs visible"
        )
    if plan.gpu_memory_gib:
        small = [g for g in report.gpus if g.total_gib < plan.gpu_memory_gib]
        if small:
            reason = RECIPES[plan.recipe].memory_reason if plan.recipe in RECIPES else ""
            found.faults.append(
                f"GPU {_indices(small)} ({small[0].name}, {small[0].total_gib:.1f} GiB) has less than the "
                f"{plan.gpu_memory_gib:g} GiB per GPU the {plan.recipe} plan needs{f' ({reason})' if reason else ''}: "
                "use larger GPUs, or adapt the placement flags (fewer colocated models, lower "
                "--vllm.gpu_memory_utilization) and skip this check with --skip-doctor"
            )
    busy = [g for g in report.gpus if g.used_gib > BUSY_GIB]
    if busy:
        found.faults.append(
            f"GPU {_indices(busy)} already {'has' if len(busy) == 1 else 'have'} "
            f"{', '.join(f'{g.used_gib:.1f}' for g in busy)} GiB in use by other processes (a previous run still "
            "alive?): end them (`nvidia-smi` lists them); training and vLLM share each GPU"
        )


def _indices(gpus) -> str:
    return ", ".join(str(g.index) for g in gpus)


def check_driver(plan: Plan, found: Findings) -> None:
    """The driver must support torch's CUDA major version (minor versions are forward compatible)."""
    report, torch = found.gpus, found.torch
    if plan.gpus_per_node == 0 or report is None or report.error or torch is None:
        return
    if torch.cuda is None:
        found.faults.append(
            f"torch {torch.version} is a CPU build: reinstall the default Linux wheel, "
            f"pip install --force-reinstall torch=={torch.version.split('+')[0]} (a CUDA 13 build)"
        )
        return
    wanted = tuple(int(x) for x in torch.cuda.split(".")[:2])
    if report.driver_cuda is not None and report.driver_cuda[0] < wanted[0]:
        have = ".".join(map(str, report.driver_cuda))
        found.faults.append(
            f"NVIDIA driver {report.driver_version} supports CUDA up to {have}, torch {torch.version} is built for "
            f"CUDA {torch.cuda}: install an {DRIVER_FLOOR}-or-newer driver (vLLM 0.29's kernels are CUDA 13 builds too)"
        )


def check_torch(plan: Plan, found: Findings, probes: Probes) -> None:
    if found.torch is None:
        found.faults.append(f"torch is not installed: pip install torch==2.13.0 first ({INSTALL_DOC})")


def check_packages(plan: Plan, found: Findings, probes: Probes) -> None:
    """Installed, at our pin, with their own requirements met, and importable (flash-attn: its CUDA extension)."""
    from packaging.requirements import InvalidRequirement, Requirement

    pins = _pins(probes, RECIPES[plan.recipe].extras)
    for name in plan.needs:
        need = NEEDS[name]
        if name == "nccl":
            check_nccl(plan, found, probes)
            continue
        version = probes.distribution(need.distribution)
        if version is None:
            found.faults.append(f"{need.distribution} is not installed: {_extra_hint(need)}")
            continue
        pin = pins.get(_canonical(need.distribution))
        if pin is not None and not pin.contains(version, prereleases=True):
            found.faults.append(
                f"{need.distribution} {version} is installed, {PACKAGE} pins {need.distribution}{pin}: "
                f"pip install '{need.distribution}{pin}'"
            )
        for line in probes.requirements(need.distribution):
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            have = probes.distribution(req.name)
            if have is None:
                found.faults.append(
                    f"{need.distribution} {version} requires {req}, which is not installed: pip install '{req}'"
                )
            elif req.specifier and not req.specifier.contains(have, prereleases=True):
                found.faults.append(
                    f"{need.distribution} {version} requires {req}, {req.name} {have} is installed: "
                    f"pip install '{req.name}{req.specifier}' (or the {need.distribution} built for {req.name} {have})"
                )
        if not probes.found(need.module):
            found.faults.append(
                f"{need.distribution} {version} is installed but `import {need.module}` finds nothing: reinstall it"
            )
        elif name == "flash_attn" and not _cpu_torch_on_gpu_plan(plan, found):
            check_flash_attn_extension(version, found, probes)
        elif name == "deepspeed" and plan.gpus_per_node > 0:
            check_deepspeed_ops(version, found, probes)


def _cpu_torch_on_gpu_plan(plan: Plan, found: Findings) -> bool:
    """A CPU torch where GPUs are planned: check_driver reports it, and what depends on CUDA torch is not checked."""
    return plan.gpus_per_node > 0 and found.torch is not None and found.torch.cuda is None


def check_flash_attn_extension(version: str, found: Findings, probes: Probes) -> None:
    """flash-attn is compiled against one torch: its extension fails to link against any other."""
    error = probes.imports("flash_attn_2_cuda")
    if error is None:
        return
    torch = found.torch.version if found.torch else "this torch"
    rebuild = (
        "rebuild it: FLASH_ATTN_CUDA_ARCHS=90 FLASH_ATTENTION_FORCE_BUILD=TRUE pip install --no-build-isolation "
        f"--no-deps --force-reinstall --no-cache-dir flash-attn=={version} ({INSTALL_DOC})"
    )
    if error == "missing":
        found.faults.append(
            f"flash-attn {version} has no CUDA extension (installed with FLASH_ATTENTION_SKIP_CUDA_BUILD, or without nvcc): {rebuild}"
        )
    else:
        found.faults.append(
            f"flash-attn {version}'s CUDA extension does not load with torch {torch} ({error}): {rebuild}"
        )


def check_deepspeed_ops(version: str, found: Findings, probes: Probes) -> None:
    """OpenRLHF's optimizer is DeepSpeed's FusedAdam: prebuilt for this torch, or compiled at the first step (nvcc, ninja)."""
    torch = found.torch
    if torch is None or torch.cuda is None:
        return
    build = probes.deepspeed_build() or {}
    installed = build.get("installed_ops", {})
    if installed.get("fused_adam") and build.get("accelerator_name") == "cuda":
        info = build.get("torch_info", {})
        built_for = (str(info.get("version", "")), str(info.get("cuda_version", "")))
        this = (".".join(torch.version.split("+")[0].split(".")[:2]), ".".join(torch.cuda.split(".")[:2]))
        if built_for != this:
            found.faults.append(
                f"DeepSpeed's prebuilt ops are for torch {built_for[0]} / CUDA {built_for[1]}, this is torch {this[0]} / "
                f"CUDA {this[1]}: rebuild them, DS_BUILD_FUSED_ADAM=1 DS_ACCELERATOR=cuda TORCH_CUDA_ARCH_LIST=9.0 pip install "
                f"--no-build-isolation --force-reinstall --no-deps --no-cache-dir deepspeed=={version} ({INSTALL_DOC})"
            )
        return
    tools = probes.toolchain()
    wanted = int(torch.cuda.split(".")[0])
    fix = (
        f"install a CUDA {wanted} toolkit and set CUDA_HOME to it (pip install 'cuda-toolkit[nvcc,cccl]=={torch.cuda}.*' works: "
        f"{INSTALL_DOC})"
    )
    if tools.nvcc_version is None:
        where = (
            f"CUDA_HOME={tools.cuda_home} has no bin/nvcc"
            if tools.cuda_home
            else "CUDA_HOME is unset and no nvcc is on PATH"
        )
        found.faults.append(f"DeepSpeed compiles its FusedAdam optimizer at the first training step and {where}: {fix}")
    elif tools.nvcc_version[0] != wanted:
        found.faults.append(
            f"nvcc {'.'.join(map(str, tools.nvcc_version))} at {tools.cuda_home} is not CUDA {wanted}, torch {torch.version}'s "
            f"(torch refuses to build DeepSpeed's FusedAdam with another major version): {fix}"
        )
    if not tools.ninja:
        found.faults.append(
            "DeepSpeed compiles its FusedAdam optimizer with ninja, which is not installed: pip install ninja"
        )


def check_nccl(plan: Plan, found: Findings, probes: Probes) -> None:
    torch = found.torch
    if torch is None or plan.gpus_per_node == 0:
        return
    if torch.cuda is None:
        return  # check_driver reports the CPU build
    if torch.nccl is None:
        found.faults.append(
            f"torch {torch.version} has no NCCL: reinstall torch (pip install --force-reinstall torch=={torch.version.split('+')[0]})"
        )
        return
    shipped = None
    for line in probes.requirements("torch"):
        if line.startswith("nvidia-nccl"):
            shipped = probes.distribution(re.split(r"[=<>!~; ]", line, maxsplit=1)[0])
    loaded = ".".join(map(str, torch.nccl))
    if shipped and not shipped.startswith(loaded):
        found.faults.append(
            f"torch loads NCCL {loaded}, not the {shipped} its nvidia-nccl wheel installed (LD_LIBRARY_PATH or "
            "LD_PRELOAD points at another libnccl?): unset them, or pip install --force-reinstall the nvidia-nccl wheel"
        )


def check_disk(plan: Plan, found: Findings, probes: Probes) -> None:
    disk = probes.disk(plan.output_dir)
    if not disk.writable:
        found.faults.append(
            f"cannot write to {disk.path} (for --output-dir {plan.output_dir}): choose a folder you can write to"
        )
    if plan.disk_gib is not None and disk.free_gib < plan.disk_gib:
        found.faults.append(
            f"{disk.path} has {disk.free_gib:.0f} GiB free, the {plan.recipe} run keeps about {plan.disk_gib:.0f} GiB of "
            "checkpoints there: free space, pass another --output-dir, or keep fewer checkpoints"
        )


def check_hf_token(plan: Plan, found: Findings, probes: Probes) -> None:
    if plan.hf_token and not probes.hf_token():
        found.faults.append(
            "gated data (GPQA-Diamond) needs a Hugging Face token and none is set: accept the dataset's terms on the hub, "
            "then export HF_TOKEN=... (or run `hf auth login`)"
        )


def check_judge(plan: Plan, found: Findings, probes: Probes) -> None:
    if plan.judge_base_url or plan.judge_model:
        error = probes.judge(plan.judge_base_url, plan.judge_model)
        if error:
            found.faults.append(error)


def check_ray_cluster(plan: Plan, found: Findings, probes: Probes) -> None:
    """On a cluster the worker hook loads ``openrlhf_cfpo`` by name on every node: it must be there, the same."""
    address = probes.environ.get("RAY_ADDRESS")
    if not address and plan.nodes <= 1:
        return
    cluster = probes.ray_cluster(address)
    if cluster.error:
        target = f"RAY_ADDRESS={address}" if address else "a running Ray cluster (address 'auto')"
        found.faults.append(
            f"cannot reach {target} for --nodes {plan.nodes} ({cluster.error}): start it first, `ray start --head` on this "
            "node and `ray start --address=HEAD_IP:6379` on the others (README, multi-node)"
        )
        return
    if len(cluster.nodes) < plan.nodes:
        found.faults.append(
            f"the Ray cluster has {len(cluster.nodes)} node(s), --nodes {plan.nodes} needs {plan.nodes}: "
            "run `ray start --address=HEAD_IP:6379` on the missing nodes (README, multi-node)"
        )
    if plan.gpus_per_node:
        short = [n for n in cluster.nodes if n.gpus < plan.gpus_per_node]
        if short and len(cluster.nodes) - len(short) < plan.nodes:
            found.faults.append(
                f"Ray node(s) {', '.join(f'{n.address} ({n.gpus:g} GPUs)' for n in short)} offer fewer than the "
                f"{plan.gpus_per_node} GPUs per node planned: start them with all GPUs visible (`ray start ... --num-gpus {plan.gpus_per_node}`)"
            )
    ours = probes.package_version()
    ours_torch = found.torch.version if found.torch else None
    for node in cluster.nodes:
        if node.package_version is None:
            found.faults.append(
                f"openrlhf_cfpo does not import on Ray node {node.address} ({node.import_error}): install this package "
                "there too, in the environment its `ray start` runs (same venv or image on every node)"
            )
        elif node.package_version != ours:
            found.faults.append(
                f"Ray node {node.address} has openrlhf_cfpo {node.package_version}, this node {ours}: install the same "
                "version on every node"
            )
        if ours_torch and node.torch_version and node.torch_version != ours_torch:
            found.faults.append(
                f"Ray node {node.address} has torch {node.torch_version}, this node {ours_torch}: use one environment "
                "(venv or image) on every node"
            )


def run_checks(plan: Plan, probes: Probes | None = None) -> Findings:
    probes = probes or Probes()
    found = Findings(gpus=probes.gpus(), torch=probes.torch())
    check_gpus(plan, found)
    check_torch(plan, found, probes)
    check_driver(plan, found)
    check_packages(plan, found, probes)
    check_disk(plan, found, probes)
    check_hf_token(plan, found, probes)
    check_judge(plan, found, probes)
    check_ray_cluster(plan, found, probes)
    return found


def summary(plan: Plan, found: Findings, seconds: float) -> str:
    parts = [plan.recipe, f"{plan.nodes} node(s) x {plan.gpus_per_node} GPU(s)"]
    report = found.gpus
    if report and report.gpus and not report.error:
        g = report.gpus[0]
        cuda = ".".join(map(str, report.driver_cuda)) if report.driver_cuda else "?"
        parts.append(
            f"{len(report.gpus)}x {g.name} {g.total_gib:.0f} GiB, driver {report.driver_version} (CUDA {cuda})"
        )
    if found.torch:
        parts.append(
            f"torch {found.torch.version}"
            + (f", NCCL {'.'.join(map(str, found.torch.nccl))}" if found.torch.nccl else "")
        )
    return f"openrlhf-cfpo doctor: ok ({'; '.join(parts)}; {seconds:.1f} s)"


# ---------------------------------------------------------------------------------------------------------------
# Command line


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage first)
        self.exit(2, f"openrlhf-cfpo doctor: {message}\n")


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more (got {text})")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more (got {text})")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 (got {text})")
    return value


def _needs(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in NEEDS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {', '.join(unknown)}; known: {', '.join(NEEDS)}")
    return names


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="openrlhf-cfpo doctor",
        description="Preflight of this node (and the Ray cluster) for a recipe: one line per fault, all of them, in seconds.",
    )
    p.add_argument("--recipe", required=True, choices=sorted(RECIPES), help="what will run; sets the defaults below")
    p.add_argument("--nodes", type=_positive_int, default=1, help="nodes of the run (> 1: checks the Ray cluster)")
    p.add_argument(
        "--gpus-per-node",
        "--gpus",
        dest="gpus",
        type=_non_negative_int,
        help="GPUs per node the run uses (0: no GPU needed); default: the recipe's",
    )
    p.add_argument(
        "--gpu-memory-gib", type=_positive_float, help="memory each GPU needs (total, GiB); default: the recipe's"
    )
    p.add_argument("--disk-gib", type=_positive_float, help="free space the run needs under --output-dir (GiB)")
    p.add_argument(
        "--output-dir", default=".", help="where checkpoints go (measured there or at its nearest existing parent)"
    )
    p.add_argument("--needs", type=_needs, help=f"comma-separated, replaces the recipe's list: {', '.join(NEEDS)}")
    p.add_argument(
        "--hf-token", action="store_true", help="gated data will be read (GPQA): a Hugging Face token must be set"
    )
    p.add_argument("--judge-base-url", help="judged benchmarks: the OpenAI-compatible endpoint (else $OPENAI_BASE_URL)")
    p.add_argument("--judge-model", action="append", help="judged benchmarks: a judge model (repeatable)")
    return p


def plan_from_args(args) -> Plan:
    recipe = RECIPES[args.recipe]
    gpus = recipe.gpus_per_node if args.gpus is None else args.gpus
    return Plan(
        recipe=args.recipe,
        nodes=args.nodes,
        gpus_per_node=gpus,
        gpu_memory_gib=(args.gpu_memory_gib or recipe.gpu_memory_gib) if gpus else None,
        disk_gib=args.disk_gib,
        output_dir=args.output_dir,
        needs=args.needs if args.needs is not None else recipe.packages,
        hf_token=args.hf_token,
        judge_base_url=args.judge_base_url,
        judge_model=args.judge_model[0] if args.judge_model else None,  # the check reads the endpoint, not the model
    )


def main(argv=None, probes: Probes | None = None) -> int:
    args = build_parser().parse_args(argv)
    if os.environ.get(SKIP_ENV) == "1":
        print(f"openrlhf-cfpo doctor: skipped ({SKIP_ENV}=1)")
        return 0
    start = time.monotonic()
    plan = plan_from_args(args)
    found = run_checks(plan, probes)
    for note in found.notes:
        print(f"openrlhf-cfpo doctor: {note}")
    if found.faults:
        for fault in found.faults:
            print(f"openrlhf-cfpo doctor: {fault}", file=sys.stderr)
        print(
            f"openrlhf-cfpo doctor: {len(found.faults)} problem(s) for {plan.recipe}; the scripts skip this check with "
            f"--skip-doctor or {SKIP_ENV}=1",
            file=sys.stderr,
        )
        return 1
    print(summary(plan, found, time.monotonic() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
