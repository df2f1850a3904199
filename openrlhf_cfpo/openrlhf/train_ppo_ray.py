"""How CFPO reaches every process of an OpenRLHF 0.11.2 run, top to bottom.

    python -m openrlhf_cfpo.cli.train_ppo_ray <any OpenRLHF 0.11.2 flag> --actor.policy_loss_type cfpo

1. :func:`main` runs OpenRLHF's own ``openrlhf.cli.train_ppo_ray`` as ``__main__`` (its parser is built inside
   ``if __name__ == "__main__"``; nothing of it is copied), with argparse and ``ray.init`` patched for the run;
2. argparse: ``--actor.policy_loss_type`` also accepts the registry's losses, and right after parsing
   :func:`check_args` ends a bad combination with one error line, in the driver, before Ray starts or a GPU is
   requested. Without the GPU-only extensions (a laptop: no vLLM, no flash-attn kernels) the module still
   imports, so ``--help`` and the checks work there, and the run stops with one line before ``ray.init``;
3. ``ray.init``: :func:`with_cfpo_workers` names :func:`install` as every worker's setup hook, through Ray's hook
   environment variable, which reaches workers on a direct connection and over Ray Client (``ray://``) alike;
4. in every worker, :func:`install` waits for OpenRLHF's ``ppo_actor`` to be imported (:func:`patch_on_import`;
   importing it here would pull DeepSpeed into vLLM engine processes, which OpenRLHF keeps out of them);
5. :func:`_patch`: ``ppo_actor.PolicyLoss`` becomes :func:`build_policy_loss` (our
   :class:`~openrlhf_cfpo.openrlhf.PolicyLoss` for the registry's losses, OpenRLHF's own for others such as
   ``gspo``), ``ActorPPOTrainer.training_step`` logs every diagnostic the surrogate declares, and
   ``ActorPPOTrainer.broadcast_to_vllm`` checks after each weight sync that every vLLM engine holds the actor's
   weights (:mod:`openrlhf_cfpo.openrlhf.weight_sync`; the driver gives the engines its worker extension).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import runpy
import sys
import types
from collections.abc import Callable, Iterator

# Nothing heavy at import: every Ray process (vLLM engines and Ray's own helpers too) runs install() at start, and
# the CPU test stand-ins load patch_on_import into every process; torch comes with the loss, when it is needed.

OPENRLHF_MODULE = "openrlhf.cli.train_ppo_ray"
# Modules OpenRLHF imports at the top that only a GPU machine has: vLLM, and flash-attn's CUDA kernels (a
# CPU install of flash-attn has its Python package but not this extension).
GPU_ONLY_MODULES = ("vllm", "flash_attn_2_cuda")
PPO_ACTOR = "openrlhf.trainer.ray.ppo_actor"
VLLM_ENGINE = "openrlhf.trainer.ray.vllm_engine"
# Set to 1: run OpenRLHF's own parsing and checks of the flags (and ours), then stop where training would start: what
# a train script's --dry-run asks (openrlhf_cfpo.recipe_commands.check_command). A bad flag is one line, exit 2.
CHECK_ONLY_ENV = "OPENRLHF_CFPO_CHECK_ONLY"
SKIP_SYNC_CHECK_FLAG = "--vllm.skip_sync_check"  # turns off openrlhf_cfpo.openrlhf.weight_sync's check
LOSS_TYPE_FLAG = "--actor.policy_loss_type"
SETUP_HOOK = f"{__name__}.install"
# A user's own setup hook ("module.function"), run by ours right after it.
USER_HOOK_ENV = "OPENRLHF_CFPO_USER_SETUP_HOOK"
# What a Ray 2.55 worker reads to find its setup hook (ray_constants.WORKER_PROCESS_SETUP_HOOK_ENV_VAR). A driver
# connected directly turns the runtime_env field ``worker_process_setup_hook`` into this variable; a Ray Client
# driver never does, so setting the variable ourselves, instead of the field, reaches the workers on both paths
# (the field and the variable together make Ray Client's server fail to start).
RAY_HOOK_ENV = "__RAY_WORKER_PROCESS_SETUP_HOOK_ENV_VAR"
# The runtime_env of a job started by `ray job submit`, which Ray merges into the driver's ray.init.
RAY_JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"


# ---------------------------------------------------------------------------------------------------------------
# 1. The entry point
# ---------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    saved_argv = sys.argv
    sys.argv = ["python -m openrlhf_cfpo.cli.train_ppo_ray", *argv]
    check_only = os.environ.get(CHECK_ONLY_ENV) == "1"
    try:
        with openrlhf_with_cfpo(check_only):
            runpy.run_module(OPENRLHF_MODULE, run_name="__main__", alter_sys=False)
    except FlagsChecked:
        return 0
    except AssertionError as err:  # OpenRLHF checks its flags with asserts, after parsing them
        if not check_only:
            raise
        print(f"python -m openrlhf_cfpo.cli.train_ppo_ray: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        stop = stopped_by_us(err)
        if stop is None:
            raise
        # Our one line, not Ray's traceback of every actor it passed through. Ray's threads forward worker lines to
        # stdout and stderr meanwhile: stdout's buffer goes out first, and the line is one write, so nothing lands
        # inside.
        sys.stdout.flush()
        sys.stderr.write(stop + "\n")
        sys.stderr.flush()
        return 1
    finally:
        sys.argv = saved_argv
    return 0


class FlagsChecked(Exception):
    """Every check of the flags passed, in a check-only run (CHECK_ONLY_ENV): training would start here."""


class StopTraining(RuntimeError):
    """A check of ours stopped the run in a worker (its message is the one line the user sees)."""


def stopped_by_us(err: BaseException) -> str | None:
    """The one line of the :class:`StopTraining` behind ``err``, if any. Ray re-raises a worker's exception in each
    caller as a RayTaskError that is also an instance of the original class and holds it as ``cause``: the deepest
    one is the original, whose message is the line."""
    found = None
    for _ in range(16):
        if err is None:
            break
        if isinstance(err, StopTraining):
            found = err
        err = getattr(err, "cause", None) or err.__cause__
    return None if found is None else str(found).strip().splitlines()[-1]


@contextlib.contextmanager
def openrlhf_with_cfpo(check_only: bool = False) -> Iterator[None]:
    """Patch argparse and ray.init (and let OpenRLHF import without its GPU-only modules) for one OpenRLHF run;
    ``check_only``: stop at ray.init, the start of training, with :class:`FlagsChecked`."""
    import ray

    from openrlhf_cfpo.losses import POLICY_LOSSES

    add_argument = argparse.ArgumentParser.add_argument
    parse_args = argparse.ArgumentParser.parse_args
    ray_init = ray.init
    absent = [name for name in GPU_ONLY_MODULES if importlib.util.find_spec(name) is None]

    def add_argument_with_our_losses(self, *names, **kwargs):
        if LOSS_TYPE_FLAG in names and kwargs.get("choices"):
            kwargs["choices"] = list(dict.fromkeys([*kwargs["choices"], *POLICY_LOSSES]))
            kwargs["help"] = "policy surrogate; cfpo is Clipping-Free Policy Optimization (arXiv 2601.22801)"
            add_argument(
                self,
                SKIP_SYNC_CHECK_FLAG,
                action="store_true",
                default=False,
                help="openrlhf-cfpo: do not check after each weight sync that every vLLM engine holds the "
                "actor's weights (openrlhf_cfpo/openrlhf/weight_sync.py)",
            )
        return add_argument(self, *names, **kwargs)

    def parse_and_check(self, args=None, namespace=None):
        parsed = parse_args(self, args, namespace)
        if hasattr(parsed, "actor.policy_loss_type"):
            try:
                check_args(parsed)
                check_job_setup_hook()
            except ValueError as err:
                self.error(str(err))
        return parsed

    @functools.wraps(ray_init)
    def init_with_cfpo_workers(*args, runtime_env=None, **kwargs):
        if check_only:
            raise FlagsChecked
        if absent:
            print(
                f"python -m openrlhf_cfpo.cli.train_ppo_ray: the flags passed every check, but this machine has no "
                f"{' and no '.join(absent)}, which OpenRLHF needs to train: run on a GPU machine with "
                f"`pip install '.[openrlhf]'`",
                file=sys.stderr,
            )
            sys.exit(2)
        return ray_init(*args, runtime_env=runtime_env_for_driver(runtime_env), **kwargs)

    argparse.ArgumentParser.add_argument = add_argument_with_our_losses
    argparse.ArgumentParser.parse_args = parse_and_check
    ray.init = init_with_cfpo_workers
    if not absent:  # every engine gets the worker extension that answers the weight-sync check
        patch_on_import(VLLM_ENGINE, _with_checked_workers)
    try:
        with _absent_until_used(absent):
            yield
    finally:
        argparse.ArgumentParser.add_argument = add_argument
        argparse.ArgumentParser.parse_args = parse_args
        ray.init = ray_init


@contextlib.contextmanager
def _absent_until_used(names: list[str]) -> Iterator[None]:
    """Let OpenRLHF's module import on a machine without the GPU-only modules ``names`` (it imports them at the
    top) so that its parser, ``--help`` and the checks run there. This is no stand-in: any *use* of such a module
    raises, and the run stops with one line in ``ray.init``, before anything would use one."""

    class Absent(types.ModuleType):
        __path__: list = []

        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return Absent(f"{self.__name__}.{name}")

        def __call__(self, *args, **kwargs):
            raise ModuleNotFoundError(f"{self.__name__} is not installed (pip install '.[openrlhf]' on a GPU machine)")

    def is_absent(fullname: str) -> bool:
        return any(fullname == name or fullname.startswith(name + ".") for name in names)

    class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, fullname, path, target=None):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True) if is_absent(fullname) else None

        def create_module(self, spec):
            return Absent(spec.name)

        def exec_module(self, module):
            pass

    if not names:
        yield
        return
    finder = Finder()
    sys.meta_path.insert(0, finder)  # before the path finder: an installed but unusable module stays out too
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        for name in [n for n, module in sys.modules.items() if isinstance(module, Absent)]:
            del sys.modules[name]


# ---------------------------------------------------------------------------------------------------------------
# 2. In the driver, right after parsing
# ---------------------------------------------------------------------------------------------------------------


def check_args(args: argparse.Namespace) -> None:
    """Raise ValueError for combinations that would fail (or silently do nothing) on the GPUs."""
    from openrlhf_cfpo.advantages import GROUP_BASELINE_ESTIMATORS
    from openrlhf_cfpo.losses import POLICY_LOSSES, trust_region
    from openrlhf_cfpo.openrlhf.policy_loss import PolicyLoss

    get = functools.partial(getattr, args)
    if not get("actor.adam.lr", 1.0) > 0:  # OpenRLHF takes any float; a step against the gradient is no typo to keep
        raise ValueError(f"--actor.adam.lr must be more than 0 (got {get('actor.adam.lr')})")
    estimator = get("algo.advantage.estimator")
    if estimator in GROUP_BASELINE_ESTIMATORS and get("rollout.n_samples_per_prompt") < 2:
        raise ValueError(
            f"--algo.advantage.estimator {estimator} needs a baseline from the other samples of the same "
            f"prompt: set --rollout.n_samples_per_prompt to 2 or more (got {get('rollout.n_samples_per_prompt')})"
        )
    if get("actor.policy_loss_type") in POLICY_LOSSES:
        eps_low, eps_high = trust_region(get("actor.eps_clip"), *(get("actor.eps_clip_low_high") or (None, None)))
        threshold = list(get("algo.advantage.is_correction_threshold"))
        PolicyLoss(  # its constructor holds every check on the loss's own settings
            clip_eps_low=eps_low,
            clip_eps_high=eps_high,
            dual_clip=get("actor.dual_clip"),
            policy_loss_type=get("actor.policy_loss_type"),
            is_correction_level=get("algo.advantage.is_correction_level"),
            is_correction_mode=get("algo.advantage.is_correction_mode"),
            is_correction_gating=get("algo.advantage.is_correction_gating"),
            is_correction_threshold=[0.0] + threshold if len(threshold) == 1 else threshold,
        )


# ---------------------------------------------------------------------------------------------------------------
# 3. ray.init: the hook travels to every worker
# ---------------------------------------------------------------------------------------------------------------


def with_cfpo_workers(runtime_env: dict | None) -> dict:
    """``runtime_env`` with :func:`install` as every worker's setup hook (:data:`RAY_HOOK_ENV`); its env_vars are
    kept. A hook the caller already set ("module.function") is chained: ours runs first, then theirs."""
    runtime_env = dict(runtime_env or {})
    env_vars = dict(runtime_env.get("env_vars") or {})
    theirs = runtime_env.pop("worker_process_setup_hook", None) or env_vars.get(RAY_HOOK_ENV)
    if theirs not in (None, SETUP_HOOK):
        if not isinstance(theirs, str):
            raise ValueError(
                f"worker_process_setup_hook is a callable ({getattr(theirs, '__name__', theirs)!r}); openrlhf-cfpo "
                f"chains a user hook after its own only by name: give it as a 'module.function' string"
            )
        env_vars[USER_HOOK_ENV] = theirs
    env_vars[RAY_HOOK_ENV] = SETUP_HOOK
    runtime_env["env_vars"] = env_vars
    return runtime_env


def job_setup_hook() -> str | None:
    """The setup hook of the `ray job submit` job this driver runs in, if any (from Ray's job config)."""
    config = os.environ.get(RAY_JOB_CONFIG_ENV)
    if not config:
        return None
    runtime_env = json.loads(config).get("runtime_env") or {}
    return runtime_env.get("worker_process_setup_hook") or (runtime_env.get("env_vars") or {}).get(RAY_HOOK_ENV)


def check_job_setup_hook() -> None:
    """Under `ray job submit`, the job's own setup hook must be ours: Ray refuses to merge two hooks (and
    RAY_OVERRIDE_JOB_RUNTIME_ENV=1 would silently drop one)."""
    hook = job_setup_hook()
    if hook not in (None, SETUP_HOOK):
        raise ValueError(
            f"this job's runtime_env sets worker_process_setup_hook={hook!r}, and CFPO needs its own hook in every "
            f'worker: submit with --runtime-env-json \'{{"worker_process_setup_hook": "{SETUP_HOOK}", '
            f'"env_vars": {{"{USER_HOOK_ENV}": "{hook}"}}}}\' (ours runs first, then yours)'
        )


def runtime_env_for_driver(runtime_env: dict | None) -> dict | None:
    """What OpenRLHF's ``ray.init`` gets: our hook added, unless the submitted job already carries it."""
    if job_setup_hook() == SETUP_HOOK:
        return runtime_env  # Ray merges the job's runtime_env (with our hook) into this one
    return with_cfpo_workers(runtime_env)


# ---------------------------------------------------------------------------------------------------------------
# 4. In every worker: patch ppo_actor once it is imported
# ---------------------------------------------------------------------------------------------------------------


def install() -> None:
    """Worker setup hook: route OpenRLHF's PolicyLoss and ActorPPOTrainer through ours, then run the user's own
    hook if one was chained (:data:`USER_HOOK_ENV`). Idempotent."""
    patch_on_import(PPO_ACTOR, _patch)
    theirs = os.environ.get(USER_HOOK_ENV)
    if theirs and theirs != SETUP_HOOK:
        module_name, _, func = theirs.rpartition(".")
        print(
            f"[openrlhf-cfpo] worker setup hook {SETUP_HOOK} done in pid {os.getpid()}; running yours: {theirs}",
            flush=True,
        )
        getattr(importlib.import_module(module_name), func)()


_PATCHES: dict[str, Callable] = {}


def patch_on_import(name: str, patch: Callable) -> None:
    """Run ``patch(module)`` on module ``name`` right after it executes, or now if it already has."""
    module = sys.modules.get(name)
    if module is not None:
        patch(module)
        return
    _PATCHES[name] = patch
    if not any(isinstance(finder, PatchAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, PatchAfterImport())


class PatchAfterImport(importlib.abc.MetaPathFinder):
    """Finds a module waiting in :func:`patch_on_import` as the path finder does, and patches it once it executed."""

    def find_spec(self, fullname, path, target=None):
        patch = _PATCHES.pop(fullname, None)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


# ---------------------------------------------------------------------------------------------------------------
# 5. ppo_actor, patched
# ---------------------------------------------------------------------------------------------------------------


def build_policy_loss(*, policy_loss_type: str = "ppo", **kwargs):
    """What ActorPPOTrainer calls as ``PolicyLoss(...)``: ours for our registry's losses."""
    from openrlhf_cfpo.losses import POLICY_LOSSES
    from openrlhf_cfpo.openrlhf.policy_loss import PolicyLoss

    if policy_loss_type not in POLICY_LOSSES:
        from openrlhf.models.loss import PolicyLoss as OpenRLHFPolicyLoss

        return OpenRLHFPolicyLoss(policy_loss_type=policy_loss_type, **kwargs)
    loss_fn = PolicyLoss(policy_loss_type=policy_loss_type, **kwargs)
    print(
        f"[openrlhf-cfpo] {policy_loss_type.upper()} policy loss active in pid {os.getpid()} "
        f"(eps_low={loss_fn.clip_eps_low}, eps_high={loss_fn.clip_eps_high}, "
        f"token_level_loss={loss_fn.token_level_loss}, "
        f"is_correction_level={loss_fn.is_correction_level})",
        flush=True,  # Ray forwards worker stdout to the driver's console
    )
    return loss_fn


class NonFiniteTraining(StopTraining):
    """A micro-batch's advantages or policy loss are nan or inf: the job stops before backward on every actor rank."""


def stop_if_not_finite(advantages, action_mask, loss, step: int) -> None:
    """Stop every actor rank together, before backward, when a micro-batch's advantages or loss are not finite.

    OpenRLHF 0.11.2 has no such check: a nan ``reward_func`` value spreads through its group's baseline into the
    advantages and the loss, and DeepSpeed then either skips the step silently (bf16, ZeRO 1/2) or lets Adam write
    nan weights that the next saves keep (ZeRO 3). Raised here, nothing of the micro-batch reaches the gradients, the
    step is not taken and no checkpoint is written after it. The ranks agree by one all-reduce (max) of the flags, so
    that all raise or none does: a rank that went on alone would hang in ZeRO's next collective.
    """
    import torch
    import torch.distributed as dist

    flags = torch.tensor(
        [float(not torch.isfinite(advantages[action_mask.bool()]).all()), float(not torch.isfinite(loss).all())],
        device=loss.device,
    )
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    if flags.any():
        source = (
            "advantages (a reward that is nan or inf spreads through its group's baseline: check the reward "
            "function or reward model)"
            if flags[0]
            else "policy loss (the log-probs or the ratio overflowed)"
        )
        raise NonFiniteTraining(
            f"[openrlhf-cfpo] micro-batch {step} of this training round: the {source} "
            f"{'are' if flags[0] else 'is'} not finite "
            f"on at least one actor rank; stopped before backward on every rank, so the weights and "
            f"the checkpoints saved so far stay finite"
        )


def _with_checked_workers(vllm_engine) -> None:
    from openrlhf_cfpo.openrlhf.weight_sync import with_checked_workers

    with_checked_workers(vllm_engine)


def _patch(ppo_actor) -> None:
    if getattr(ppo_actor, "_openrlhf_cfpo_installed", False):
        return
    from openrlhf_cfpo.losses import logged_name
    from openrlhf_cfpo.openrlhf.policy_loss import PolicyLoss

    class ActorPPOTrainer(ppo_actor.ActorPPOTrainer):
        syncs = 0

        def broadcast_to_vllm(self):
            """OpenRLHF's weight sync, then the check that every engine holds the weights just sent."""
            super().broadcast_to_vllm()
            self.syncs += 1
            if not getattr(self.strategy.args.vllm, "skip_sync_check", False):
                from openrlhf_cfpo.openrlhf.weight_sync import check_engines

                check_engines(self, self.syncs)

        def training_step(self, experience, kl_ctl, step, loss_batch_info=None):
            """OpenRLHF's step; the loss's own diagnostics are logged beside its ppo_clip_ratio and ppo_kl."""
            loss_fn = self.actor_loss_fn
            if not isinstance(loss_fn, PolicyLoss):  # OpenRLHF's own loss (e.g. gspo): nothing of ours to log
                return super().training_step(experience, kl_ctl, step, loss_batch_info)
            outputs = []

            def compute_and_keep(log_probs, old_log_probs, advantages, *args, **kwargs):
                outputs.append(loss_fn.compute(log_probs, old_log_probs, advantages, *args, **kwargs))
                stop_if_not_finite(advantages, kwargs["action_mask"], outputs[-1].loss, step)
                return tuple(outputs[-1][:5])

            self.actor_loss_fn = compute_and_keep
            try:
                status = super().training_step(experience, kl_ctl, step, loss_batch_info)
            finally:
                self.actor_loss_fn = loss_fn
            for name, value in outputs[-1].metrics.items():
                status["metrics"][logged_name("openrlhf", name)] = value.detach()
                status["weights"][logged_name("openrlhf", name)] = "token"
            return status

    ppo_actor.PolicyLoss = build_policy_loss
    ppo_actor.ActorPPOTrainer = ActorPPOTrainer
    ppo_actor._openrlhf_cfpo_installed = True
