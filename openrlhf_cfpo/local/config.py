"""The `openrlhf-cfpo local` argument list: OpenRLHF 0.11.2's dotted flag names, checks, derived sizes.

Flags that name the same knob as OpenRLHF's ``train_ppo_ray`` keep its name (``--rollout.batch_size``,
``--train.max_epochs``, ``--algo.kl.init_coef`` ...), so a command line moves between the two.
Defaults differ where OpenRLHF's suit an 8B model on GPUs and not the embedded default on a laptop
(learning rate, batch sizes, generation length). Every derived size is computed once, in
:class:`Sizes`, and read by name everywhere else. Which of the engine's defaults, a command's, the embedded
default's run flags and the user's flags sets each setting is decided in one place, :func:`layered_settings`.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from ..advantages import GROUP_BASELINES
from ..losses import DEFAULT_POLICY_LOSS, POLICY_LOSSES, check_policy_loss_args, trust_region
from . import embedded
from .device import DEVICE_CHOICES, DEVICE_PATTERN
from .embedded import DEFAULT_NAME as DEFAULT_EMBEDDED
from .embedded import REGISTRY as EMBEDDED_DEFAULTS
from .errors import ConfigError

# Flags that change where or how a run is stored or shown, not what it computes: a resumed run may
# change them. Everything else must match the checkpoint.
RESUME_FREE = {
    "ckpt.load_enable",
    "ckpt.save_steps",
    "ckpt.max_num",
    "ckpt.path",
    "ckpt.output_dir",
    "logger.tensorboard_dir",
    "logger.progress",
    "num_threads",
    "device",
    "reward.timeout",
}

# The folders a run writes, each what it holds: one process at a time writes each (:mod:`.lock`), and in `compare`
# and `sweep` every run gets its own.
RUN_FOLDERS = {"ckpt.output_dir": "run", "ckpt.path": "checkpoints", "logger.tensorboard_dir": "TensorBoard logs"}


# What a setting is called elsewhere (OpenRLHF's names before its dotted ones, the usual short names), where difflib
# would not find ours: the name as typed, without its dashes (or its last dotted part) -> the flag that sets it.
FLAG_ALIASES = {
    "lr": "--actor.adam.lr",
    "learning_rate": "--actor.adam.lr",
    "actor_learning_rate": "--actor.adam.lr",
    "adam_betas": "--actor.adam.betas",
    "l2": "--actor.adam.weight_decay",
    "pretrain": "--actor.model_name_or_path",
    "reward_pretrain": "--reward.model_name_or_path",
    "remote_rm_url": "--reward.remote_url",
    "prompt_data": "--data.prompt_dataset",
    "generate_max_len": "--rollout.max_new_tokens",
    "init_kl_coef": "--algo.kl.init_coef",
    "entropy_loss_coef": "--actor.entropy_coef",
    "save_path": "--ckpt.output_dir",
    "ckpt_path": "--ckpt.path",
    "max_ckpt_num": "--ckpt.max_num",
    "load_checkpoint": "--ckpt.load_enable",
    "bf16": "--ds.param_dtype bf16",
}


def suggest_flag(bad: str, known: list[str]) -> str | None:
    """The flag most likely meant by the unknown ``bad`` (``--lr`` -> ``--actor.adam.lr``), among the options
    ``known``, or None: a well-known alias, else the flags whose last dotted part is ``bad``'s, else the closest
    name, whole or by its last part."""
    name = bad.split("=")[0].lstrip("-").replace("-", "_")
    last = name.rsplit(".", 1)[-1]
    alias = FLAG_ALIASES.get(name) or FLAG_ALIASES.get(last)
    if alias:
        return alias
    flags = [k for k in known if k.startswith("--") and k != "--help"]
    same_last = [k for k in flags if k.rsplit(".", 1)[-1].lstrip("-") == last]
    if same_last:
        return " or ".join(same_last)
    close = difflib.get_close_matches(f"--{name}", flags, n=1)
    if close:
        return close[0]
    by_last = {k.rsplit(".", 1)[-1].lstrip("-"): k for k in flags}
    close = difflib.get_close_matches(last, list(by_last), n=1, cutoff=0.75)
    return by_last[close[0]] if close else None


def misspelt_option(parser: argparse.ArgumentParser, local_flags: list[str]) -> str | None:
    """One line for the first of ``local_flags`` (what the command ``parser`` of `compare` or `sweep` left for the
    `local` runs) that is no `local` flag but reads as one of the command's own options misspelt or cut short
    (``--iter`` for ``--iterations``); None when there is none."""
    own = [s for a in parser._actions for s in a.option_strings if s.startswith("--")]
    local = {s for a in build_parser()._actions for s in a.option_strings}
    for word in local_flags:
        name = word.split("=", 1)[0]
        if name.startswith("--") and name not in local and (meant := suggest_flag(name, own)) in own:
            return f"unrecognized arguments: {name}; did you mean {meant}? (see `{parser.prog} --help`)"
    return None


class _Parser(argparse.ArgumentParser):
    """argparse, with every error as one line that says what to do (and the flag an unknown one likely means). Flags
    are taken only as spelled in full: a prefix (``--rollout.batch``) is not read as the one flag it starts, which
    another flag added later would silently change."""

    def __init__(self, **kwargs):
        super().__init__(allow_abbrev=False, **kwargs)

    def error(self, message: str):
        known = [s for a in self._actions for s in a.option_strings]
        hint = None
        if message.startswith("unrecognized arguments:"):
            bad = [word for word in message.split(":", 1)[1].split() if word.startswith("--")]
            hint = next(filter(None, (suggest_flag(word, known) for word in bad)), None)
        raise ConfigError(f"{message}{f'; did you mean {hint}?' if hint else ''} (see `{self.prog} --help`)")


def build_parser(prog: str = "openrlhf-cfpo local") -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog,
        description="Single-process RLHF (OpenRLHF's RLOO semantics) with PPO's clipped loss or CFPO, CPU first.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = p.add_argument
    g = p.add_argument_group("models and data (default: an embedded default, built offline on first use)")
    g.add_argument(
        "--embedded_default",
        default=DEFAULT_EMBEDDED,
        choices=list(EMBEDDED_DEFAULTS),
        help="what fills in the models and data not given: "
        + "; ".join(f"{name} ({what})" for name, what in EMBEDDED_DEFAULTS.items()),
    )
    g.add_argument(
        "--actor.model_name_or_path",
        default=None,
        help="the SFT policy: a local Hugging Face causal LM folder or a hub name",
    )
    g.add_argument(
        "--reward.model_name_or_path",
        default=None,
        help="reward model: a local AutoModelForSequenceClassification folder (num_labels=1) or a hub name",
    )
    g.add_argument(
        "--reward.remote_url",
        default=None,
        help="verifiable rewards instead of a reward model: a .py file defining OpenRLHF's "
        "reward_func(queries, prompts, labels) -> {'rewards', 'scores', 'extra_logs'}",
    )
    g.add_argument(
        "--reward.timeout",
        type=float,
        default=None,
        help="seconds one reward_func call may run before the run stops, saved (default: no limit; a call running "
        "over 60 s gets a warning line)",
    )
    g.add_argument(
        "--data.prompt_dataset",
        default=None,
        help="prompts: a .jsonl/.json/.txt/.parquet file, a dataset folder, or a hub dataset name (NAME@DIR: its "
        "sub-folder DIR)",
    )
    g.add_argument("--data.prompt_split", default="train", help="split of a dataset folder or hub dataset")
    g.add_argument("--data.input_key", default="input", help="field holding the prompt text")
    g.add_argument(
        "--data.label_key", default=None, help="field passed to reward_func as its label (e.g. the reference answer)"
    )
    g.add_argument(
        "--data.input_template",
        default=None,
        help="format string with {} for the prompt text (without --data.apply_chat_template)",
    )
    g.add_argument("--data.max_samples", type=int, default=int(1e8), help="use at most this many prompts")
    g.add_argument(
        "--data.apply_chat_template", action="store_true", help="wrap each prompt in the tokenizer's chat template"
    )
    g.add_argument(
        "--data.max_len",
        type=int,
        default=2048,
        help="max total sequence length (prompt + response), OpenRLHF's; a longer prompt is cut to its last tokens",
    )

    g = p.add_argument_group("rollout")
    g.add_argument("--rollout.batch_size", type=int, default=16, help="prompts per rollout")
    g.add_argument("--rollout.n_samples_per_prompt", type=int, default=4, help="responses sampled per prompt")
    g.add_argument("--rollout.micro_batch_size", type=int, default=64, help="sequences generated / scored per forward")
    g.add_argument("--rollout.max_new_tokens", type=int, default=24, help="generation length limit")
    g.add_argument("--rollout.temperature", type=float, default=1.0, help="sampling temperature (log-probs use it too)")
    g.add_argument("--rollout.top_p", type=float, default=1.0, help="nucleus sampling")

    g = p.add_argument_group("training")
    g.add_argument("--train.batch_size", type=int, default=16, help="samples per optimizer step")
    g.add_argument(
        "--train.micro_batch_size", type=int, default=16, help="samples per forward/backward (gradient accumulation)"
    )
    g.add_argument(
        "--train.max_epochs",
        type=int,
        default=1,
        help="passes over each rollout (>1 or several steps per rollout = off-policy)",
    )
    g.add_argument("--train.num_episodes", type=int, default=1, help="passes over the prompt set")
    g.add_argument(
        "--train.seed", "--seed", dest="train.seed", type=int, default=42, help="seed for data order, sampling and init"
    )

    g = p.add_argument_group("algorithm")
    g.add_argument(
        "--algo.advantage.estimator",
        default="rloo",
        choices=list(GROUP_BASELINES),
        help="group baseline for the advantages",
    )
    g.add_argument(
        "--algo.kl.init_coef",
        type=float,
        default=0.01,
        help="KL-to-reference coefficient, folded into the per-token reward",
    )
    g.add_argument("--algo.kl.estimator", default="k1", choices=["k1", "k2", "k3"], help="per-token KL estimator")
    g.add_argument(
        "--reward.clip_range",
        type=float,
        nargs=2,
        default=(-10.0, 10.0),
        metavar=("LOW", "HIGH"),
        help="reward clip range",
    )
    g.add_argument(
        "--actor.policy_loss_type",
        default=DEFAULT_POLICY_LOSS,
        choices=sorted(POLICY_LOSSES),
        help="ppo: clipped surrogate; cfpo: quadratic penalty",
    )
    g.add_argument("--actor.eps_clip", type=float, default=0.2, help="trust-region half-width eps")
    g.add_argument(
        "--actor.eps_clip_low_high",
        type=float,
        nargs=2,
        default=None,
        metavar=("LOW", "HIGH"),
        help="eps_low, eps_high",
    )
    g.add_argument("--actor.dual_clip", type=float, default=None, help="dual-clip constant c > 1 (ppo only)")
    g.add_argument(
        "--actor.entropy_coef",
        type=float,
        default=None,
        help="entropy bonus coefficient (entropy is logged either way)",
    )
    g.add_argument("--actor.adam.lr", type=float, default=2e-4, help="AdamW learning rate")
    g.add_argument(
        "--actor.adam.betas", type=float, nargs=2, default=(0.9, 0.95), metavar=("B1", "B2"), help="AdamW betas"
    )
    g.add_argument("--actor.adam.eps", type=float, default=1e-8, help="AdamW eps")
    g.add_argument("--actor.adam.weight_decay", type=float, default=0.0, help="AdamW weight decay")
    g.add_argument(
        "--actor.lr_scheduler",
        default="cosine_with_min_lr",
        choices=["cosine_with_min_lr", "constant"],
        help="learning-rate schedule",
    )
    g.add_argument("--actor.lr_warmup_ratio", type=float, default=0.03, help="warmup share of all optimizer steps")
    g.add_argument("--actor.min_lr_ratio", type=float, default=0.1, help="final lr / peak lr for cosine_with_min_lr")
    g.add_argument("--actor.max_norm", type=float, default=1.0, help="gradient clipping norm")
    g.add_argument(
        "--actor.logprobs_chunk_size",
        type=int,
        default=1024,
        help="tokens per chunk when computing log-probs and entropy",
    )

    g = p.add_argument_group("checkpoints and logging")
    g.add_argument(
        "--ckpt.output_dir",
        default="./runs/local",
        help="run folder: metrics.jsonl, tensorboard/, checkpoints/, model/",
    )
    g.add_argument("--ckpt.path", default=None, help="checkpoint folder (default: OUTPUT_DIR/checkpoints)")
    g.add_argument(
        "--ckpt.save_steps",
        type=int,
        default=20,
        help="checkpoint every N optimizer steps (a kill loses at most N); -1: never",
    )
    g.add_argument("--ckpt.max_num", type=int, default=2, help="checkpoints kept")
    g.add_argument(
        "--ckpt.load_enable",
        "--resume",
        dest="ckpt.load_enable",
        action="store_true",
        help="continue from the last checkpoint",
    )
    g.add_argument(
        "--logger.tensorboard_dir", default=None, help="TensorBoard folder (default: OUTPUT_DIR/tensorboard)"
    )
    g.add_argument(
        "--logger.progress",
        default="auto",
        choices=["auto", "bar", "none"],
        help="progress bar (auto: only on a terminal)",
    )
    add("--device", default="auto", help=f"{DEVICE_CHOICES} (auto: cuda if present, else cpu)")
    add(
        "--ds.param_dtype",
        default="fp32",
        choices=["fp32", "bf16"],
        help="bf16: mixed precision (bf16 compute under autocast, fp32 master weights and optimizer; "
        "the frozen reference and reward model held in bf16), as OpenRLHF's bf16 on a GPU; "
        "also runs on a CPU, where it is rarely faster",
    )
    add(
        "--num_threads",
        type=int,
        default=0,
        help="CPU threads for torch; 0: 1 for models under 20M parameters, else torch's default",
    )
    return p


def nest(flat: dict[str, Any]) -> SimpleNamespace:
    """``{"rollout.batch_size": 16}`` -> ``ns.rollout.batch_size``, the attribute layout OpenRLHF uses."""
    root: dict[str, Any] = {}
    for key, value in flat.items():
        node = root
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value

    def to_ns(d):
        return SimpleNamespace(**{k: to_ns(v) if isinstance(v, dict) else v for k, v in d.items()})

    return to_ns(root)


@dataclass(frozen=True)
class Sizes:
    """Every size derived from the flags, computed once."""

    n_prompts: int
    samples_per_rollout: int
    steps_per_epoch: int
    steps_per_rollout: int
    rollouts_per_episode: int
    num_rollouts: int
    total_steps: int

    @classmethod
    def of(cls, args: SimpleNamespace, n_prompts: int) -> Sizes:
        samples = args.rollout.batch_size * args.rollout.n_samples_per_prompt
        steps_per_epoch = samples // args.train.batch_size
        per_episode = n_prompts // args.rollout.batch_size
        return cls(
            n_prompts=n_prompts,
            samples_per_rollout=samples,
            steps_per_epoch=steps_per_epoch,
            steps_per_rollout=steps_per_epoch * args.train.max_epochs,
            rollouts_per_episode=per_episode,
            num_rollouts=per_episode * args.train.num_episodes,
            total_steps=per_episode * args.train.num_episodes * steps_per_epoch * args.train.max_epochs,
        )


@dataclass
class LocalConfig:
    flat: dict[str, Any]
    args: SimpleNamespace
    given: frozenset = frozenset()  # the flags on the command line (dotted names), as opposed to their defaults

    @property
    def eps_low_high(self):
        a = self.args.actor
        return trust_region(a.eps_clip, *(a.eps_clip_low_high or (None, None)))

    @property
    def uses_embedded_default(self) -> bool:
        """Whether the embedded default fills in a model, the prompts or the reward (whatever the flags leave out)."""
        a = self.args
        return (
            a.actor.model_name_or_path is None
            or a.data.prompt_dataset is None
            or (a.reward.model_name_or_path is None and a.reward.remote_url is None)
        )

    def to_json(self, **extra: Any) -> str:
        """The flags as ``run_config.json`` holds them, with ``extra`` keys (the run's ``run_id``)."""
        return json.dumps({**self.flat, **extra}, indent=2, sort_keys=True)

    def differences(self, saved: dict[str, Any]) -> list[str]:
        """The flags that differ from a saved run's (``run_config.json``) and may not change on resume."""
        # A flag the saved run's version did not have yet ran at its default there.
        saved = {**build_parser().parse_args([]).__dict__, **saved}
        saved = {k: list(v) if isinstance(v, tuple) else v for k, v in saved.items()}
        return [
            f"--{k} {saved.get(k)} -> {self.flat.get(k)}"
            for k in sorted(set(saved) | set(self.flat))
            if k not in RESUME_FREE and saved.get(k) != self.flat.get(k)
        ]


LAYERS = ("engine", "command", "embedded", "user")  # the sources of a setting, lowest precedence first
_UNSET = object()


def _named_by(parser: argparse.ArgumentParser, flags: list[str]) -> dict[str, Any]:
    """The settings ``flags`` name by themselves, each with its value: one equal to its default, or given under an
    alias (``--seed``), counts as named too."""
    unset = argparse.Namespace(**{a.dest: _UNSET for a in parser._actions if a.default is not argparse.SUPPRESS})
    # argparse fills in a default only where the namespace has no value yet: here, nowhere.
    return {k: v for k, v in vars(parser.parse_args(flags, namespace=unset)).items() if v is not _UNSET}


@dataclass(frozen=True)
class Layers:
    """A run's settings and the layer each one came from (see :func:`layered_settings`)."""

    flags: list[str]  # the command's defaults, the embedded default's run flags, the user's: a `local` command line
    settings: dict[str, Any]  # dotted flag name -> effective value
    source: dict[str, str]  # dotted flag name -> the layer (one of LAYERS) that set it

    @property
    def given(self) -> frozenset:
        """The flags on the user's command line (dotted names)."""
        return frozenset(k for k, layer in self.source.items() if layer == "user")


def layered_settings(user_flags: list[str], command_defaults: list[str] | tuple[str, ...] = ()) -> Layers:
    """The settings of a `local`, `compare` or `sweep` run, each layer overriding the ones before it:

    1. engine: the defaults of :func:`build_parser`;
    2. command: the command's own defaults (``compare``'s and ``sweep``'s regimes; none for ``local``);
    3. embedded: the run flags of the embedded default that layers 1, 2 and 4 name (``--embedded_default``), what
       its model and prompts need (a chat template, a generation length);
    4. user: the flags given on the command line.

    Each layer is parsed once, by itself, so a flag belongs to the layer that names it, whatever its value.
    ``flags`` holds layers 2-4 in that order, which argparse reads back to the same settings (a later flag wins):
    what `compare` and `sweep` start each run with. A flag argparse refuses raises ConfigError (its one line).
    """
    parser = build_parser()
    command, user = _named_by(parser, list(command_defaults)), _named_by(parser, list(user_flags))
    engine = vars(parser.parse_args([]))
    run_flags = list(embedded.get({**engine, **command, **user}["embedded_default"]).flags)
    settings, source = {}, {}
    for layer, named in zip(LAYERS, (engine, command, _named_by(parser, run_flags), user)):
        settings.update(named)
        source.update(dict.fromkeys(named, layer))
    return Layers([*command_defaults, *run_flags, *user_flags], settings, source)


def set_per_run(layers: Layers, per_run: dict[str, str], prog: str) -> list[str]:
    """One line for each flag the user gave that the command ``prog`` sets per run itself (``per_run``: dotted name
    -> the command's option for it), which would otherwise be overridden without a word."""
    lines = []
    for name, option in per_run.items():
        if layers.source.get(name) == "user":
            value = layers.settings[name]
            value = " ".join(map(str, value)) if isinstance(value, (list, tuple)) else value
            lines.append(f"--{name} {value} is set per run by {prog}: give {option} {value} instead")
    return lines


def parse_args(argv: list[str] | None = None) -> LocalConfig:
    """The settings of a `local` run (:func:`layered_settings`), checked by themselves (what they point at is checked
    by :mod:`.preflight`)."""
    layers = layered_settings(list(sys.argv[1:] if argv is None else argv))
    flat = {k: (list(v) if isinstance(v, tuple) else v) for k, v in layers.settings.items()}
    out = flat["ckpt.output_dir"]
    flat["ckpt.path"] = flat["ckpt.path"] or os.path.join(out, "checkpoints")
    flat["logger.tensorboard_dir"] = flat["logger.tensorboard_dir"] or os.path.join(out, "tensorboard")
    cfg = LocalConfig(flat, nest(flat), layers.given)
    problems = flag_problems(cfg)
    if problems:
        raise ConfigError(*problems)
    return cfg


def flag_problems(cfg: LocalConfig) -> list[str]:
    """Every problem of the flags by themselves (nothing they point at is touched), one line each."""
    f, a = cfg.flat, cfg.args
    problems = []
    positive = (
        "rollout.batch_size",
        "rollout.n_samples_per_prompt",
        "rollout.micro_batch_size",
        "rollout.max_new_tokens",
        "train.batch_size",
        "train.micro_batch_size",
        "train.max_epochs",
        "train.num_episodes",
        "data.max_samples",
        "data.max_len",
        "actor.adam.lr",
        "actor.logprobs_chunk_size",
    )  # eps: the registry's own check below
    problems += [f"--{n} must be > 0, got {f[n]}" for n in positive if f[n] is None or f[n] <= 0]
    if a.rollout.temperature <= 0:
        problems.append(f"--rollout.temperature must be > 0 (sampling only), got {a.rollout.temperature}")
    if not 0 < a.rollout.top_p <= 1:
        problems.append(f"--rollout.top_p must be in (0, 1], got {a.rollout.top_p}")
    n = a.rollout.n_samples_per_prompt
    if 0 < n < 2:
        problems.append(
            f"--algo.advantage.estimator {a.algo.advantage.estimator} needs --rollout.n_samples_per_prompt >= 2 "
            f"(the baseline comes from the other samples of the same prompt), got {n}"
        )
    samples = a.rollout.batch_size * n
    if samples > 0 and a.train.batch_size > 0 and samples % a.train.batch_size:
        problems.append(
            f"--train.batch_size {a.train.batch_size} must divide the rollout size --rollout.batch_size x "
            f"--rollout.n_samples_per_prompt = {samples}"
        )
    if a.train.batch_size > 0 and a.train.micro_batch_size > 0 and a.train.batch_size % a.train.micro_batch_size:
        problems.append(
            f"--train.micro_batch_size {a.train.micro_batch_size} must divide --train.batch_size {a.train.batch_size}"
        )
    low, high = a.reward.clip_range
    if low >= high:
        problems.append(f"--reward.clip_range LOW HIGH needs LOW < HIGH, got {low} {high}")
    try:
        check_policy_loss_args(a.actor.policy_loss_type, *cfg.eps_low_high, a.actor.dual_clip)
    except ValueError as e:  # the registry's own message, with our flag names
        problems.append(f"{e} (--actor.eps_clip / --actor.eps_clip_low_high, --actor.dual_clip)")
    if {"actor.eps_clip", "actor.eps_clip_low_high"} <= cfg.given:
        # OpenRLHF takes eps_clip_low_high and ignores eps_clip without a word; which width was meant is not ours to
        # guess.
        problems.append(
            f"give --actor.eps_clip {a.actor.eps_clip} (both sides) or --actor.eps_clip_low_high "
            f"{' '.join(map(str, a.actor.eps_clip_low_high))}, not both: OpenRLHF would ignore --actor.eps_clip"
        )
    betas = a.actor.adam.betas
    if not all(0 <= b < 1 for b in betas):
        problems.append(
            f"--actor.adam.betas B1 B2 must each be in [0, 1) (AdamW's averaging factors), got "
            f"{' '.join(map(str, betas))}"
        )
    timeout = f["reward.timeout"]
    if timeout is not None and not timeout > 0:
        problems.append(f"--reward.timeout must be > 0 (seconds one reward_func call may run), got {timeout}")
    if a.algo.kl.init_coef < 0:
        problems.append(f"--algo.kl.init_coef must be >= 0, got {a.algo.kl.init_coef}")
    for name in ("actor.lr_warmup_ratio", "actor.min_lr_ratio"):
        if not 0 <= f[name] <= 1:
            problems.append(
                f"--{name} must be in [0, 1] "
                f"(a share of {'all optimizer steps' if 'warmup' in name else 'the peak lr'}), got {f[name]}"
            )
    if a.ckpt.save_steps == 0 or a.ckpt.save_steps < -1:
        problems.append(
            f"--ckpt.save_steps must be >= 1 (a checkpoint every N optimizer steps) or -1 (never), "
            f"got {a.ckpt.save_steps}"
        )
    if a.ckpt.max_num < 1:
        problems.append(
            f"--ckpt.max_num must be >= 1 (checkpoints kept; --ckpt.save_steps -1 saves none), got {a.ckpt.max_num}"
        )
    if a.num_threads < 0:
        problems.append(f"--num_threads must be >= 0 (0: chosen by the model's size), got {a.num_threads}")
    if not DEVICE_PATTERN.fullmatch(a.device):
        problems.append(f"--device {a.device}: choose {DEVICE_CHOICES}")
    template = f["data.input_template"]
    if template is not None and "{}" not in template:
        problems.append(f"--data.input_template {template!r} has no {{}} for the prompt text")
    if f["reward.remote_url"] is not None and f["reward.model_name_or_path"] is not None:
        problems.append(
            "give either --reward.model_name_or_path (a reward model) or --reward.remote_url (a reward_func file), "
            "not both"
        )
    return problems


def check_sizes(cfg: LocalConfig, sizes: Sizes) -> None:
    if sizes.num_rollouts < 1:
        raise ConfigError(
            f"{sizes.n_prompts} prompts make no rollout of --rollout.batch_size {cfg.args.rollout.batch_size}: "
            f"give more prompts or a smaller --rollout.batch_size"
        )
