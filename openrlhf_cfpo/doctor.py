"""`openrlhf-cfpo doctor`: find, in seconds and before Ray starts or a model loads, what would stop a recipe here.

``Probes`` read the facts; each check in ``CHECKS`` yields one ``FAULTS`` line (what is wrong, what to do) per fault
of the ``Plan``. Exit status 0: none, 1: faults, 2: bad flags. CUDA stays uninitialised: a later vLLM forks cleanly."""

import argparse
import importlib.metadata
import importlib.util
import os
import re
import runpy
import shutil
import subprocess
import sys
import time
import warnings
from collections import namedtuple
from collections.abc import Callable, Iterator
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from openrlhf_cfpo import __version__, recipes

SKIP_ENV, PACKAGE = "OPENRLHF_CFPO_SKIP_DOCTOR", "openrlhf-cfpo"
DRIVER_FLOOR = "R580"  # the CUDA 13 branch: torch 2.13.0's default wheel and vLLM 0.29's kernels are CUDA 13 builds
BUSY_GIB = 2.0  # what a CUDA context or a monitoring agent may hold on a GPU before it counts as busy
RAY_TIMEOUT_S, JUDGE_TIMEOUT_S = 60.0, 10.0
QUIET = dict(capture_output=True, text=True, timeout=30)  # how probes run a command
INSTALL_DOC = "docs/gpu-node.md, install"

# The facts as probes report them. GiB sizes; driver_cuda: the newest CUDA the driver supports; error: the driver (or
# the cluster) is there but does not answer; cuda None: a CPU torch; package_version None: ours does not import there.
Gpu = namedtuple("Gpu", "index name total_gib used_gib")
GpuReport = namedtuple("GpuReport", "driver_version driver_cuda gpus error", defaults=("", None, (), ""))
TorchBuild = namedtuple("TorchBuild", "version cuda nccl")
Toolchain = namedtuple("Toolchain", "cuda_home nvcc_version ninja")  # what compiles DeepSpeed's FusedAdam
Disk = namedtuple("Disk", "path free_gib writable")  # path: the output folder or its nearest existing parent
RayNode = namedtuple("RayNode", "address gpus package_version import_error torch_version", defaults=("", None))
RayCluster = namedtuple("RayCluster", "nodes error", defaults=((), ""))
Findings = namedtuple("Findings", "gpus torch answering faults")  # answering: the GPUs, if the driver answers
_PLAN = "recipe nodes gpus_per_node gpu_memory_gib disk_gib output_dir needs extras hf_token judge_base_url judge_model"
Plan = namedtuple("Plan", _PLAN)  # what will run; recipe None: what all recipes share; extras: whose pins apply

# What a recipe may import (recipes.NODE_NEEDS and --needs name them): pip's name, the module, our extra that brings it.
Need = namedtuple("Need", "distribution module extra")
_EXTRA = dict(flash_attn="openrlhf", vllm="openrlhf", deepspeed="openrlhf", ray="openrlhf", trl="trl", verl="verl")
_EXTRA |= dict(math_verify="reasoning", lm_eval="eval", alpaca_eval="eval")
PACKAGES = {name: Need(name.replace("_", "-"), name, extra) for name, extra in _EXTRA.items()}
PACKAGES["nccl"] = Need("torch", "torch", "openrlhf")  # torch's own NCCL (its nvidia-nccl wheel)
RECIPES = recipes.NODE_NEEDS
_SHARED_PACKAGES = tuple(n for n in PACKAGES if all(n in r.packages for r in RECIPES.values()))
_SHARED_EXTRAS = tuple(sorted(set.intersection(*(set(r.extras) for r in RECIPES.values()))))
SHARED = recipes.NodeNeeds(_SHARED_PACKAGES, _SHARED_EXTRAS, 0, None, "")  # without --recipe: all share, no GPU

# Every fault line, by the key its check yields: what is wrong, then what to do.
FAULTS = {
    "no_gpu": "no NVIDIA GPU here (no nvidia-smi), {plan} needs {wanted} per node: use a GPU node, driver {floor}+",
    "driver_down": "the NVIDIA driver does not answer ({error}): reboot the node until `nvidia-smi` works",
    "few_gpus": "{have} GPU(s) visible{where}, {plan} needs {wanted} per node: make the others visible, or pass "
    "--gpus-per-node {have} to the script (the batch sizes must still divide)",
    "small_gpus": "GPU {indices} ({gpu.name}, {gpu.total_gib:.1f} GiB) has less than the {need:g} GiB per GPU {plan} "
    "needs{why}: use larger GPUs, or fewer colocated models and less --vllm.gpu_memory_utilization with --skip-doctor",
    "busy_gpus": "GPU {indices} already {have} {used} GiB in use by other processes: end them (see `nvidia-smi`)",
    "no_torch": "torch is not installed: pip install torch==2.13.0 first ({doc})",
    "cpu_torch": "torch {torch.version} is a CPU build: pip install --force-reinstall torch=={release} (CUDA 13 wheel)",
    "old_driver": "NVIDIA driver {driver} supports CUDA up to {have[0]}.{have[1]}, torch {torch.version} is built for "
    "CUDA {torch.cuda}: install an {floor}-or-newer driver (vLLM 0.29's kernels are CUDA 13 builds too)",
    "not_installed": "{dist} is not installed: pip install --no-build-isolation '.[{extra}]' ({doc})",
    "off_pin": "{dist} {version} is installed, {package} pins {dist}{pin}: pip install '{dist}{pin}'",
    "dep_missing": "{dist} {version} requires {req}, which is not installed: pip install '{req}'",
    "dep_off": "{dist} {version} requires {req}, not {req.name} {have}: pip install '{req.name}{req.specifier}'",
    "not_found": "{dist} {version} is installed but `import {module}` finds nothing: reinstall it",
    "flash_attn": "flash-attn {version}{why}: rebuild it, FLASH_ATTN_CUDA_ARCHS=90 FLASH_ATTENTION_FORCE_BUILD=TRUE "
    "pip install --no-build-isolation --no-deps --force-reinstall --no-cache-dir flash-attn=={version} ({doc})",
    "deepspeed_ops": "DeepSpeed's prebuilt ops are for torch {built[0]} / CUDA {built[1]}, this is torch {this[0]} / "
    "CUDA {this[1]}: rebuild them, DS_BUILD_FUSED_ADAM=1 DS_ACCELERATOR=cuda TORCH_CUDA_ARCH_LIST=9.0 pip install "
    "--no-build-isolation --force-reinstall --no-deps --no-cache-dir deepspeed=={version} ({doc})",
    "nvcc": "DeepSpeed compiles its FusedAdam optimizer at the first training step and {where}: install a CUDA "
    "{wanted} toolkit and set CUDA_HOME to it (pip install 'cuda-toolkit[nvcc,cccl]=={cuda}.*' works: {doc})",
    "ninja": "DeepSpeed compiles its FusedAdam optimizer with ninja, which is not installed: pip install ninja",
    "no_nccl": "torch {version} has no NCCL: pip install --force-reinstall torch=={release}",
    "other_nccl": "torch loads NCCL {loaded}, not its nvidia-nccl wheel's {shipped}: unset LD_LIBRARY_PATH, LD_PRELOAD",
    "read_only": "cannot write to {path} (for --output-dir {output_dir}): choose a folder you can write to",
    "disk_full": "{path} has {free:.0f} GiB free, {plan} keeps about {wanted:.0f} GiB of checkpoints there: free "
    "space, or pass another --output-dir",
    "hf_token": "GPQA-Diamond is gated: accept its terms on the hub, then export HF_TOKEN=... (or `hf auth login`)",
    "no_cluster": "cannot reach {target} for --nodes {nodes} ({error}): `ray start --head` here and `ray start "
    "--address=HEAD_IP:6379` on the others (docs/gpu-node.md, multi-node)",
    "few_nodes": "the Ray cluster has {have} of the {nodes} nodes: `ray start --address=HEAD_IP:6379` on the others",
    "node_gpus": "Ray node(s) {short} offer under the {gpus} GPUs per node planned: `ray start ... --num-gpus {gpus}`",
    "node_missing": "Ray node {address} cannot import openrlhf_cfpo ({error}): install it there (one venv everywhere)",
    "node_version": "Ray node {address} has openrlhf_cfpo {theirs}, this node {ours}: install one version everywhere",
    "node_torch": "Ray node {address} has torch {theirs}, this node {ours}: use one venv or image on every node",
}


def _fault(key: str, plan: Plan, **v) -> str:
    name = f"the {plan.recipe} plan" if plan.recipe else "the plan"
    return FAULTS[key].format(plan=name, nodes=plan.nodes, floor=DRIVER_FLOOR, doc=INSTALL_DOC, package=PACKAGE, **v)


class Probes:
    """The facts the checks read, one method each, reporting (not raising) what is missing. Tests replace any."""

    environ = os.environ

    def __init__(self, **replaced: Callable):
        assert all(hasattr(Probes, name) for name in replaced), replaced
        self.__dict__.update(replaced)

    def gpus(self) -> GpuReport | None:  # nvidia-smi creates no CUDA context; None: no NVIDIA driver here
        if not shutil.which("nvidia-smi"):
            return None
        query = "--query-gpu=index,name,memory.total,memory.used,driver_version"
        try:
            header = subprocess.run(["nvidia-smi"], **QUIET)
            csv = subprocess.run(["nvidia-smi", query, "--format=csv,noheader,nounits"], **QUIET)
        except (OSError, subprocess.TimeoutExpired) as e:
            return GpuReport(error=f"nvidia-smi: {e}")
        if csv.returncode:
            said = (csv.stdout + csv.stderr).strip().splitlines() or [f"exit status {csv.returncode}"]
            return GpuReport(error=f"nvidia-smi: {said[-1]}")
        return parse_nvidia_smi(header.stdout, csv.stdout)

    def torch(self) -> TorchBuild | None:
        if not self.found("torch"):
            return None
        with warnings.catch_warnings():  # torch.cuda imports the deprecated `pynvml` shim OpenRLHF requires
            warnings.simplefilter("ignore")
            torch = importlib.import_module("torch")
            try:
                nccl = tuple(torch.cuda.nccl.version())  # reads the library; CUDA stays uninitialised
            except (AttributeError, RuntimeError):
                nccl = None
        return TorchBuild(torch.__version__, torch.version.cuda, nccl)

    def distribution(self, name: str) -> str | None:
        return next((d.version for d in importlib.metadata.distributions(name=name)), None)

    def requirements(self, name: str) -> list[str]:
        return next((d.requires or [] for d in importlib.metadata.distributions(name=name)), [])

    def found(self, module: str) -> bool:  # without importing it: vLLM, DeepSpeed and Ray take seconds to import
        try:
            return importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            return False

    def imports(self, module: str) -> str | None:  # None if it imports, else the error in one line, or "missing"
        if not self.found(module):
            return "missing"
        try:
            importlib.import_module(module)
        except Exception as e:  # an extension built for another torch raises ImportError or OSError
            return f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"

    def deepspeed_build(self) -> dict | None:  # what DeepSpeed's install recorded, read without importing it
        spec = importlib.util.find_spec("deepspeed")
        path = Path(spec.origin).with_name("git_version_info_installed.py") if spec and spec.origin else None
        return runpy.run_path(str(path)) if path and path.exists() else None

    def toolchain(self) -> Toolchain:  # CUDA_HOME as torch's cpp_extension finds it
        nvcc, env = shutil.which("nvcc"), os.environ
        home = env.get("CUDA_HOME") or env.get("CUDA_PATH") or (nvcc and str(Path(nvcc).resolve().parents[1]))
        home = home or ("/usr/local/cuda" if Path("/usr/local/cuda").exists() else None)
        try:
            said = subprocess.run([f"{home}/bin/nvcc", "--version"], **QUIET).stdout
        except (OSError, subprocess.TimeoutExpired):  # also without a CUDA_HOME: there is no "None/bin/nvcc"
            said = ""
        version = re.search(r"release (\d+)\.(\d+)", said)
        ninja = bool(shutil.which("ninja") or self.found("ninja"))
        return Toolchain(home, tuple(map(int, version.groups())) if version else None, ninja)

    def disk(self, output_dir: str) -> Disk:
        path = Path(output_dir).expanduser().absolute()
        path = next(p for p in (path, *path.parents) if p.exists())  # the nearest existing folder
        return Disk(str(path), shutil.disk_usage(path).free / 2**30, os.access(path, os.W_OK | os.X_OK))

    def hf_token(self) -> bool:  # HF_TOKEN, or a token saved by `hf auth login`
        env = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
        return bool(env or self.found("huggingface_hub") and importlib.import_module("huggingface_hub").get_token())

    def judge(self, base_url: str | None, model: str | None) -> str | None:  # None, or the eval suite's reason
        try:
            from openrlhf_cfpo.eval.judge import Judge, JudgeConfig
        except ImportError as e:
            return f"the judge check needs the eval extra ({e}): pip install '.[eval]'"
        judge = Judge(JudgeConfig(model or "", base_url=base_url))
        return judge.key_problem() or judge.endpoint_problem(timeout_s=JUDGE_TIMEOUT_S)

    def ray_cluster(self, address: str | None, module="openrlhf_cfpo", timeout_s=RAY_TIMEOUT_S) -> RayCluster:
        """One tiny task per alive node: does ``module`` import there, at which version, with which torch?"""
        try:
            import ray
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy as OnNode
        except ImportError as e:
            return RayCluster(error=f"ray is not importable ({e})")

        def report(name):  # nested, so pickled by value: it runs where our package is missing
            try:
                version, error = getattr(importlib.import_module(name), "__version__", "unknown"), ""
            except Exception as e:  # whatever it is, it is the node's fault line
                version, error = None, f"{type(e).__name__}: {e}"
            metadata = importlib.import_module("importlib.metadata")  # on that node
            return version, error, next((d.version for d in metadata.distributions(name="torch")), None)

        started_here = not ray.is_initialized()
        try:
            if started_here:  # Ray Client (ray://) would pass the quiet settings on to the server, with a warning
                quiet = {} if (address or "").startswith("ray://") else dict(logging_level="ERROR", log_to_driver=False)
                ray.init(address=address or "auto", **quiet)
            nodes, task = [n for n in ray.nodes() if n.get("Alive")], ray.remote(num_cpus=0)(report)
            refs = [task.options(scheduling_strategy=OnNode(n["NodeID"], soft=False)).remote(module) for n in nodes]
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
            answers = [ray.get(r) if r in ready else (None, f"no answer within {timeout_s:.0f} s", None) for r in refs]
            where = [
                (n.get("NodeManagerAddress", n["NodeID"][:8]), n.get("Resources", {}).get("GPU", 0.0)) for n in nodes
            ]
            return RayCluster(tuple(RayNode(*node, *answer) for node, answer in zip(where, answers)))
        except Exception as e:
            return RayCluster(error=f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}")
        finally:
            if started_here and ray.is_initialized():
                ray.shutdown()


def parse_nvidia_smi(header: str, query: str) -> GpuReport:
    """nvidia-smi's banner (for "CUDA Version: X.Y") and its csv GPU query, with CUDA_VISIBLE_DEVICES applied."""
    cuda = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", header)
    rows = [[part.strip() for part in line.split(",")] for line in query.strip().splitlines()]
    gpus = [Gpu(int(index), name, float(total) / 1024, float(used) / 1024) for index, name, total, used, _ in rows]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and not any(p.strip().startswith(("GPU-", "MIG-")) for p in visible.split(",")):
        indices = [int(p) for p in visible.split(",") if p.strip().lstrip("-").isdigit()]
        indices = indices[: next((k for k, i in enumerate(indices) if i < 0), None)]  # CUDA stops at an invalid one
        gpus = [g for i in indices for g in gpus if g.index == i]
    return GpuReport(rows[-1][4] if rows else "", tuple(map(int, cuda.groups())) if cuda else None, tuple(gpus))


def check_node(plan: Plan, found: Findings, probes: Probes) -> Iterator[str]:
    """GPUs here, visible, big and free (a driver must answer); torch built for them; room for the checkpoints."""
    report, wanted, gpus = found.gpus, plan.gpus_per_node, found.answering
    if report is None and wanted:
        yield _fault("no_gpu", plan, wanted=wanted)
    elif report and report.error and (wanted or not plan.recipe):
        yield _fault("driver_down", plan, error=report.error)
    elif len(gpus) < wanted:  # the driver answers
        where = "" if (v := os.environ.get("CUDA_VISIBLE_DEVICES")) is None else f" with CUDA_VISIBLE_DEVICES={v}"
        yield _fault("few_gpus", plan, have=len(gpus), where=where, wanted=wanted)
    if small := [g for g in gpus if plan.gpu_memory_gib and g.total_gib < plan.gpu_memory_gib]:
        why = f" ({RECIPES[plan.recipe].memory_reason})" if plan.recipe in RECIPES else ""
        indices = ", ".join(str(g.index) for g in small)
        yield _fault("small_gpus", plan, indices=indices, gpu=small[0], need=plan.gpu_memory_gib, why=why)
    if (busy := [g for g in gpus if g.used_gib > BUSY_GIB]) and wanted:
        indices, used = ", ".join(str(g.index) for g in busy), ", ".join(f"{g.used_gib:.1f}" for g in busy)
        yield _fault("busy_gpus", plan, indices=indices, have="has" if len(busy) == 1 else "have", used=used)
    cuda = gpus and report.driver_cuda  # torch: a CUDA build for a major the driver supports (minors are compatible)
    if (torch := found.torch) is None:
        yield _fault("no_torch", plan)
    elif torch.cuda is None and wanted and gpus:
        yield _fault("cpu_torch", plan, torch=torch, release=torch.version.split("+")[0])
    elif torch.cuda and (wanted or not plan.recipe) and cuda and cuda[0] < int(torch.cuda.split(".")[0]):
        yield _fault("old_driver", plan, driver=report.driver_version, have=cuda, torch=torch)
    if not (disk := probes.disk(plan.output_dir)).writable:
        yield _fault("read_only", plan, path=disk.path, output_dir=plan.output_dir)
    if plan.disk_gib is not None and disk.free_gib < plan.disk_gib:
        yield _fault("disk_full", plan, path=disk.path, free=disk.free_gib, wanted=plan.disk_gib)


def check_packages(plan: Plan, found: Findings, probes: Probes) -> Iterator[str]:
    """Ours and each needed one installed, at our pin for the plan's extras, its requirements met, and found."""
    pins = {}  # read from our installed metadata: setup.py is their one place
    for req in map(Requirement, probes.requirements(PACKAGE)):
        if req.marker is None or any(req.marker.evaluate({"extra": extra}) for extra in plan.extras):
            pins.update({canonicalize_name(req.name): req.specifier for s in req.specifier if s.operator == "=="})
    for dist, module, extra in [Need(PACKAGE, None, None)] + [PACKAGES[n] for n in plan.needs if n != "nccl"]:
        if (version := probes.distribution(dist)) is None:
            if module:  # ours is not installed when it runs from a source tree
                yield _fault("not_installed", plan, dist=dist, extra=extra)
            continue
        if (pin := pins.get(canonicalize_name(dist))) is not None and not pin.contains(version, prereleases=True):
            yield _fault("off_pin", plan, dist=dist, version=version, pin=pin)
        for req in map(Requirement, probes.requirements(dist)):  # its own (no extra): missing or off
            have = probes.distribution(req.name) if req.marker is None or req.marker.evaluate({"extra": ""}) else ""
            if have is None:
                yield _fault("dep_missing", plan, dist=dist, version=version, req=req)
            elif have and not req.specifier.contains(have, prereleases=True):
                yield _fault("dep_off", plan, dist=dist, version=version, req=req, have=have)
        if module and not probes.found(module):
            yield _fault("not_found", plan, dist=dist, version=version, module=module)


def check_builds(plan: Plan, found: Findings, probes: Probes) -> Iterator[str]:
    """Built for one torch and CUDA: flash-attn's extension, torch's NCCL, DeepSpeed's FusedAdam (where installed)."""
    torch, gpus = found.torch, plan.gpus_per_node
    if gpus and torch and not torch.cuda:  # a CPU torch is one fault, check_node's
        return
    flash = "flash_attn" in plan.needs and probes.found("flash_attn") and probes.distribution("flash-attn")
    if flash and (error := probes.imports("flash_attn_2_cuda")):
        why = f"'s CUDA extension does not load with torch {torch.version if torch else '?'} ({error})"
        why = " has no CUDA extension (built without nvcc, or skipped)" if error == "missing" else why
        yield _fault("flash_attn", plan, version=flash, why=why)
    if not gpus or not torch:
        return
    wheels = [r.name for r in map(Requirement, probes.requirements("torch")) if r.name.startswith("nvidia-nccl")]
    shipped, loaded = probes.distribution(wheels[0]) if wheels else None, ".".join(map(str, torch.nccl or ()))
    if "nccl" in plan.needs and torch.nccl is None:
        yield _fault("no_nccl", plan, version=torch.version, release=torch.version.split("+")[0])
    elif "nccl" in plan.needs and shipped and not shipped.startswith(loaded):
        yield _fault("other_nccl", plan, loaded=loaded, shipped=shipped)
    if not (version := "deepspeed" in plan.needs and probes.found("deepspeed") and probes.distribution("deepspeed")):
        return
    build = probes.deepspeed_build() or {}
    if build.get("installed_ops", {}).get("fused_adam") and build.get("accelerator_name") == "cuda":
        built = tuple(str(build.get("torch_info", {}).get(key, "")) for key in ("version", "cuda_version"))
        this = (".".join(torch.version.split("+")[0].split(".")[:2]), ".".join(torch.cuda.split(".")[:2]))
        yield from [_fault("deepspeed_ops", plan, built=built, this=this, version=version)] if built != this else []
        return
    tools, wanted = probes.toolchain(), int(torch.cuda.split(".")[0])
    where = f"CUDA_HOME={tools.cuda_home} has no bin/nvcc" if tools.cuda_home else "CUDA_HOME is unset, no nvcc on PATH"
    if (nvcc := tools.nvcc_version) and nvcc[0] != wanted:  # torch builds extensions only with its own major
        where = f"nvcc {nvcc[0]}.{nvcc[1]} at {tools.cuda_home} is not CUDA {wanted}, torch {torch.version}'s"
    if not nvcc or nvcc[0] != wanted:
        yield _fault("nvcc", plan, where=where, wanted=wanted, cuda=torch.cuda)
    if not tools.ninja:
        yield _fault("ninja", plan)


def check_remote(plan: Plan, found: Findings, probes: Probes) -> Iterator[str]:
    """A token for gated data; a judge that answers; on a cluster, ours (loaded by name) the same on every node."""
    if plan.hf_token and not probes.hf_token():
        yield _fault("hf_token", plan)
    if (plan.judge_base_url or plan.judge_model) and (error := probes.judge(plan.judge_base_url, plan.judge_model)):
        yield error
    if not (address := probes.environ.get("RAY_ADDRESS")) and plan.nodes <= 1:
        return
    if (cluster := probes.ray_cluster(address)).error:
        target = f"RAY_ADDRESS={address}" if address else "a running Ray cluster (address 'auto')"
        yield _fault("no_cluster", plan, target=target, error=cluster.error)
        return
    nodes, torch = cluster.nodes, found.torch.version if found.torch else None
    if len(nodes) < plan.nodes:
        yield _fault("few_nodes", plan, have=len(nodes))
    if (short := [n for n in nodes if n.gpus < plan.gpus_per_node]) and len(nodes) - len(short) < plan.nodes:
        named = ", ".join(f"{n.address} ({n.gpus:g} GPUs)" for n in short)
        yield _fault("node_gpus", plan, short=named, gpus=plan.gpus_per_node)
    for node in nodes:
        if node.package_version is None:
            yield _fault("node_missing", plan, address=node.address, error=node.import_error)
        elif node.package_version != __version__:
            yield _fault("node_version", plan, address=node.address, theirs=node.package_version, ours=__version__)
        if torch and node.torch_version and node.torch_version != torch:
            yield _fault("node_torch", plan, address=node.address, theirs=node.torch_version, ours=torch)


CHECKS = [check_node, check_packages, check_builds, check_remote]


def run_checks(plan: Plan, probes: Probes | None = None) -> Findings:
    report = (probes := probes or Probes()).gpus()
    found = Findings(report, probes.torch(), report.gpus if report and not report.error else (), [])
    for check in CHECKS:
        found.faults.extend(check(plan, found, probes))
    return found


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage first)
        self.exit(2, f"openrlhf-cfpo doctor: {message}\n")


def _number(kind: type, low: int, above: bool = False) -> Callable[[str], float]:
    def parse(text: str):
        if (value := kind(text)) > low or (value == low and not above):  # nan is neither
            return value
        raise argparse.ArgumentTypeError(f"must be {f'more than {low}' if above else f'{low} or more'} (got {text})")

    parse.__name__ = kind.__name__  # argparse's "invalid int value"
    return parse


def _needs(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if unknown := [n for n in names if n not in PACKAGES]:
        raise argparse.ArgumentTypeError(f"unknown {', '.join(unknown)}; known: {', '.join(PACKAGES)}")
    return names


def build_parser() -> argparse.ArgumentParser:
    what = "Preflight of this node (and the Ray cluster) for a recipe."
    p = _Parser(prog="openrlhf-cfpo doctor", description=what, allow_abbrev=False)  # flags spelled in full only
    p.add_argument("--recipe", choices=sorted(RECIPES), help="what will run; sets the defaults (none: what all share)")
    p.add_argument("--nodes", type=_number(int, 1), default=1, help="nodes of the run (> 1: checks the Ray cluster)")
    p.add_argument("--gpus-per-node", "--gpus", dest="gpus", type=_number(int, 0), help="GPUs per node the run uses")
    p.add_argument("--gpu-memory-gib", type=_number(float, 0, above=True), help="memory each GPU needs (total, GiB)")
    p.add_argument("--disk-gib", type=_number(float, 0, above=True), help="free space the run needs in --output-dir")
    p.add_argument("--output-dir", default=".", help="where checkpoints go (or its nearest existing parent)")
    p.add_argument("--needs", type=_needs, help=f"comma-separated, replaces the recipe's list: {', '.join(PACKAGES)}")
    p.add_argument("--hf-token", action="store_true", help="gated data (GPQA) will be read: a token must be set")
    p.add_argument("--judge-base-url", help="judged benchmarks: the OpenAI-compatible endpoint (else $OPENAI_BASE_URL)")
    p.add_argument("--judge-model", action="append", help="judged benchmarks: a judge model (repeatable)")
    return p


def plan_from_args(a: argparse.Namespace) -> Plan:
    """The recipe's needs (recipes.NODE_NEEDS), or what every recipe shares, with the flags' overrides."""
    n = RECIPES.get(a.recipe, SHARED)
    gpus = n.gpus_per_node if a.gpus is None else a.gpus
    memory, needs = (a.gpu_memory_gib or n.gpu_memory_gib) if gpus else None, n.packages if a.needs is None else a.needs
    judge = a.judge_model[0] if a.judge_model else None  # the check reads the endpoint, not the model
    return Plan(
        a.recipe, a.nodes, gpus, memory, a.disk_gib, a.output_dir, needs, n.extras, a.hf_token, a.judge_base_url, judge
    )


def main(argv=None, probes: Probes | None = None) -> int:
    args, start = build_parser().parse_args(argv), time.monotonic()
    if os.environ.get(SKIP_ENV) == "1":
        print(f"openrlhf-cfpo doctor: skipped ({SKIP_ENV}=1)")
        return 0
    found = run_checks(plan := plan_from_args(args), probes)
    if found.gpus is None and not plan.gpus_per_node:
        print("openrlhf-cfpo doctor: CPU-only machine (no NVIDIA driver found): GPU checks skipped")
    if found.faults:
        what = plan.recipe or "what every recipe shares (--recipe NAME checks one)"
        skip = f"the scripts skip this check with --skip-doctor or {SKIP_ENV}=1"
        for line in [*found.faults, f"{len(found.faults)} problem(s) for {what}; {skip}"]:
            print(f"openrlhf-cfpo doctor: {line}", file=sys.stderr)
        return 1
    parts = [plan.recipe or "what every recipe shares", f"{plan.nodes} node(s) x {plan.gpus_per_node} GPU(s)"]
    if gpus := found.answering:
        cuda, driver = ".".join(map(str, found.gpus.driver_cuda or ())) or "?", found.gpus.driver_version
        parts.append(f"{len(gpus)}x {gpus[0].name} {gpus[0].total_gib:.0f} GiB, driver {driver} (CUDA {cuda})")
    if torch := found.torch:
        parts.append(f"torch {torch.version}" + (f", NCCL {'.'.join(map(str, torch.nccl))}" if torch.nccl else ""))
    if plan.recipe is None:
        parts.append(f"to check one recipe: --recipe NAME ({', '.join(sorted(RECIPES))})")
    print(f"openrlhf-cfpo doctor: ok ({'; '.join(parts)}; {time.monotonic() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
