"""What a run needs, checked and loaded once before any model loads: its run folder, inputs, reward file, prompts, sizes.

:func:`.config.parse_args` checks the flags by themselves and touches no file. :func:`prepare` then checks what
they point at, cheapest first: the run folder (an earlier run there, and on ``--resume`` that its flags match),
then the inputs (local paths, hub names fetched or found cached), the reward file (imported here, once), the
embedded default (built on first use), the prompts and the sizes they make. The :class:`Inputs` it returns are
what the trainer runs on.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional

from .config import LocalConfig, Sizes, check_sizes
from .data import PromptSet, load_prompts
from .errors import ConfigError
from .logger import METRICS_FILE, RUN_CONFIG
from .outputs import folder_problem
from .rewards import RewardFunction


@dataclass
class Inputs:
    """Local folders and files for every model and data flag, the loaded reward file, the prompts and the sizes."""

    policy: str
    reward: Optional[str]  # a reward model folder, or None with a reward file
    reward_func: Optional[str]  # the reward file (--reward.remote_url), or None with a reward model
    reward_fn: Optional[RewardFunction]
    prompts: str
    prompts_data_dir: Optional[str]
    label_key: Optional[str]
    prompt_set: PromptSet
    sizes: Sizes

    def paths(self) -> Dict[str, Optional[str]]:
        """What the run was given, as written into ``run_summary.json``."""
        return {"policy": self.policy, "reward": self.reward, "reward_func": self.reward_func, "prompts": self.prompts,
                "prompts_data_dir": self.prompts_data_dir, "label_key": self.label_key}


def check_run_folder(cfg: LocalConfig) -> None:
    """Every output folder can be written, and an earlier run in ``--ckpt.output_dir`` is continued only with
    ``--resume``, and only with its own flags."""
    for flag in ("ckpt.output_dir", "ckpt.path", "logger.tensorboard_dir"):
        problem = folder_problem(flag, cfg.flat[flag])
        if problem:
            raise ConfigError(problem)
    out = Path(cfg.args.ckpt.output_dir)
    if not cfg.args.ckpt.load_enable:
        if (out / METRICS_FILE).exists():
            raise ConfigError(f"{out} already holds a run (metrics.jsonl); pass --resume to continue it, or choose another --ckpt.output_dir")
        return
    if (out / RUN_CONFIG).exists():
        diff = cfg.differences(json.loads((out / RUN_CONFIG).read_text()))
        if diff:
            raise ConfigError(f"--resume needs the flags of the interrupted run; these differ: {', '.join(diff)}")


def check_inputs(cfg: LocalConfig) -> None:
    """Every path or hub name the flags give is one that could exist (nothing is fetched or imported here)."""
    from .hub import is_hub_name

    f = cfg.flat
    for key in ("actor.model_name_or_path", "reward.model_name_or_path"):
        path = f[key]
        if path is not None and not os.path.isdir(path) and not is_hub_name(path):
            raise ConfigError(f"--{key} {path}: no such folder (give a local Hugging Face model folder, a hub name such as "
                              f"Qwen/Qwen2.5-0.5B-Instruct, or omit it for the embedded default)")
    dataset = f["data.prompt_dataset"]
    if dataset is not None and not os.path.exists(dataset.partition("@")[0]) and not is_hub_name(dataset.partition("@")[0]):
        raise ConfigError(f"--data.prompt_dataset {dataset}: no such file or folder (nor a hub dataset name)")
    url = f["reward.remote_url"]
    if url is not None and not url.endswith(".py"):
        raise ConfigError(f"--reward.remote_url {url}: the local engine calls reward_func from a .py file; "
                          f"an HTTP reward server needs OpenRLHF itself")


def check_labels(reward_fn: Optional[RewardFunction], label_key: Optional[str], prompt_set: PromptSet) -> None:
    """A reward_func that reads its labels needs --data.label_key: without it every label is '' and every reward is
    computed against nothing (OpenRLHF 0.11.2's --data.label_key defaults to none, and it passes '' the same way)."""
    if reward_fn is None or label_key is not None or not reward_fn.reads_labels:
        return
    where = (f"the prompts' fields: {', '.join(prompt_set.fields)}" if prompt_set.fields
             else "the prompts are plain text, which have no labels: give a .jsonl or dataset with a label field")
    raise ConfigError(f"--reward.remote_url {reward_fn.path}: reward_func reads its labels, but no --data.label_key is given, so "
                      f"every label would be '' (as with OpenRLHF's default): set --data.label_key to the field with the "
                      f"reference answer ({where})")


def check_without_loading(cfg: LocalConfig) -> None:
    """What can be checked without importing, fetching or building anything: the run folder and the input paths."""
    check_run_folder(cfg)
    check_inputs(cfg)


def prepare(cfg: LocalConfig, log: Callable[[str], None] = print) -> Inputs:
    """Check and load everything the run needs, cheapest first; the first problem raises :class:`ConfigError`."""
    from .hub import resolve_dataset, resolve_model

    a = cfg.args
    check_without_loading(cfg)
    # The user's module is imported once, here: a file without reward_func stops the run before any model loads.
    reward_fn = RewardFunction(a.reward.remote_url) if a.reward.remote_url is not None else None
    # Hub names are fetched (or found cached) before the embedded default is built, so a bad name stops at once.
    policy = resolve_model("actor.model_name_or_path", a.actor.model_name_or_path) if a.actor.model_name_or_path else None
    reward = resolve_model("reward.model_name_or_path", a.reward.model_name_or_path) if a.reward.model_name_or_path else None
    prompts, data_dir = resolve_dataset("data.prompt_dataset", a.data.prompt_dataset) if a.data.prompt_dataset else (None, None)
    label_key = a.data.label_key
    if cfg.uses_embedded_default:
        from . import embedded

        assets = embedded.get(a.embedded_default).cached(log=log)
        policy = policy or assets.policy
        if prompts is None:
            prompts, label_key = assets.prompts, label_key or assets.label_key
        if reward is None and reward_fn is None:
            reward = assets.reward
            reward_fn = RewardFunction(assets.reward_func) if assets.reward_func else None
    prompt_set = load_prompts(prompts, a.data.input_key, a.data.max_samples, label_key, a.data.prompt_split, data_dir)
    check_labels(reward_fn, label_key, prompt_set)
    sizes = Sizes.of(a, len(prompt_set))
    check_sizes(cfg, sizes)
    return Inputs(policy, reward, reward_fn.path if reward_fn else None, reward_fn, prompts, data_dir, label_key, prompt_set, sizes)
