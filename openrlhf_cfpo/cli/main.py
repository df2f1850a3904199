"""`openrlhf-cfpo`: one console script, one sub-command per job.

Each sub-command lives in its own module and is imported only when asked for, so
`openrlhf-cfpo plot` never pays for importing a trainer.
"""

import importlib
import sys
import warnings

SUBCOMMANDS = {
    "local": ("openrlhf_cfpo.local.cli", "main_local", "train with the single-process RLHF engine"),
    "compare": ("openrlhf_cfpo.local.cli", "main_compare", "CFPO vs clipped RLOO on the embedded default, with plots"),
    "sweep": (
        "openrlhf_cfpo.local.cli",
        "main_sweep",
        "GRPO vs CFPO over iterations of sample reuse (paper Figure 2), with plots",
    ),
    "plot": ("openrlhf_cfpo.local.cli", "main_plot", "Figure-3-style plots from run folders or TensorBoard logs"),
    "eval": ("openrlhf_cfpo.eval.cli", "main", "AlpacaEval 2.0, Arena-Hard, MT-Bench, IFEval, OpenLLM and the report"),
    "train-ppo-ray": ("openrlhf_cfpo.cli.train_ppo_ray", "main", "OpenRLHF 0.11.2's train_ppo_ray with cfpo"),
    "doctor": ("openrlhf_cfpo.doctor", "main", "preflight of this node (and the Ray cluster) for a recipe, in seconds"),
    "gpu-smoke": (
        "openrlhf_cfpo.gpu_smoke",
        "main",
        "first run on a new GPU node: OpenRLHF, TRL, verl and eval on a tiny model",
    ),
}

# What a sub-command imports beyond the core install (`pip install openrlhf-cfpo`), and the extra that brings it: a
# missing one is named before the command starts, in one line, instead of a traceback from deep inside it.
NEEDS_EXTRA = {"train-ppo-ray": ("openrlhf", ("openrlhf", "ray", "deepspeed"))}


def missing_extra(name: str) -> str | None:
    """One line naming the extra that sub-command ``name`` needs and lacks; None when it has what it imports."""
    extra, modules = NEEDS_EXTRA.get(name, (None, ()))
    for module in modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            missing = (e.name or module).partition(".")[0]
            if missing not in modules:
                raise  # a package of the extra is there but broken: its own traceback says more
            return (
                f"openrlhf-cfpo {name}: {missing} is not installed; this command needs the {extra} extra: "
                f"pip install 'openrlhf-cfpo[{extra}]' (on a CPU machine: see docs/testing.md)"
            )
    return None


def quiet_startup() -> None:
    """Silence start-up noise that says nothing about the user's run: pynvml 13 (an OpenRLHF requirement) warns
    that it is deprecated whenever torch imports it, in every command."""
    warnings.filterwarnings("ignore", message="The pynvml package is deprecated", category=FutureWarning)


def _usage() -> str:
    lines = ["usage: openrlhf-cfpo COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<14} {help_}" for name, (_, _, help_) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet_startup()
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"openrlhf-cfpo: unknown command {name!r}; choose one of: {', '.join(SUBCOMMANDS)}", file=sys.stderr)
        return 2
    problem = missing_extra(name)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    module, func, _ = SUBCOMMANDS[name]
    command = getattr(importlib.import_module(module), func)
    return command(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
