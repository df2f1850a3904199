"""What a run needs, checked and loaded once before any model loads: run folder, inputs, reward file, prompts, sizes.

:func:`.config.parse_args` checks the flags by themselves and touches no file. :func:`prepare` then checks what
they point at, cheapest first: the run folder (an earlier run there, and on ``--resume`` that its flags match),
then the inputs (local paths; the reward file, imported here once; hub names fetched or found cached; the reward
model's config), the embedded default (built on first use), the prompts and the sizes they make, then the prompts'
lengths in tokens (the policy's tokenizer, the models' configs: no weights). Each stage reports every problem it
finds, one line each, before the next, costlier one starts. The :class:`Inputs` it returns are what the trainer
runs on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import checkpoint
from .config import RUN_FOLDERS, LocalConfig, Sizes, check_sizes
from .data import PromptSet, load_prompts, prompts_sha256
from .device import resolve_device, resolve_dtype
from .errors import ConfigError, Problems
from .lock import holder_problem
from .logger import METRICS_FILE, RUN_CONFIG
from .outputs import folder_problem
from .rewards import RewardFunction
from .rollout import encode_prompts, format_prompts


@dataclass
class Inputs:
    """Local folders and files for every model and data flag, the loaded reward file, the prompts and the sizes."""

    policy: str
    reward: str | None  # a reward model folder, or None with a reward file
    reward_func: str | None  # the reward file (--reward.remote_url), or None with a reward model
    reward_fn: RewardFunction | None
    prompts: str
    prompts_data_dir: str | None
    label_key: str | None
    prompt_set: PromptSet
    sizes: Sizes
    tokenizer: Any = None  # the policy's tokenizer, loaded to measure the prompts (the trainer reuses it)
    max_prompt_tokens: int | None = None  # longer prompts are cut to their last this many tokens (None: no limit)
    prompts_sha256: str | None = None  # see data.prompts_sha256

    def paths(self) -> dict[str, str | None]:
        """What the run was given, as written into ``run_summary.json``."""
        return {
            "policy": self.policy,
            "reward": self.reward,
            "reward_func": self.reward_func,
            "prompts": self.prompts,
            "prompts_data_dir": self.prompts_data_dir,
            "label_key": self.label_key,
        }


def run_folder_problems(cfg: LocalConfig) -> list[str]:
    """Every output folder can be written and is not in use by another process, and an earlier run in
    ``--ckpt.output_dir`` is continued only with ``--resume``, only with its own flags and checkpoints."""
    out = Path(cfg.args.ckpt.output_dir)
    problems = [folder_problem("ckpt.output_dir", str(out))]
    for flag in list(RUN_FOLDERS)[1:]:  # the checkpoint and TensorBoard folders (inside a bad output folder: said once)
        if not (problems[0] and Path(cfg.flat[flag]).resolve().is_relative_to(out.resolve())):
            problems.append(folder_problem(flag, cfg.flat[flag]))
    problems.append(next(filter(None, (holder_problem(flag, cfg.flat[flag]) for flag in RUN_FOLDERS)), None))
    if not cfg.args.ckpt.load_enable and (out / METRICS_FILE).exists():
        problems.append(
            f"{out} already holds a run (metrics.jsonl); pass --resume to continue it, or choose another "
            "--ckpt.output_dir"
        )
    else:
        problems += run_identity(cfg)[1]
    return [p for p in problems if p]


def _whose(run: dict | None) -> str:
    return f"the run in {run['output_dir']}" if run else "an earlier run"


def run_identity(cfg: LocalConfig) -> tuple[str | None, list[str]]:
    """The id of the run ``cfg`` continues (None: a new run) and why its checkpoint folder cannot serve it: it holds
    another run's checkpoints, or (on ``--resume``) flags that change what is computed differ from the run's own,
    read from its ``run_config.json`` or, when that is missing, from its newest checkpoint."""
    out, ckpt = Path(cfg.args.ckpt.output_dir), cfg.flat["ckpt.path"]
    found = [(path, checkpoint.run_of(path)) for path in checkpoint.newest_first(ckpt)]
    if not cfg.args.ckpt.load_enable:
        if not found:
            return None, []
        return None, [
            f"--ckpt.path {ckpt} holds the checkpoints of {_whose(found[0][1])} ({found[0][0].name}); a new run "
            "would prune them: give it a --ckpt.path of its own, or continue that run with --resume"
        ]
    saved, damaged = _saved_run_config(out)
    if damaged:
        ours = any(run for _, run in found)
        return None, [
            f"--resume: {out / RUN_CONFIG} is damaged ({damaged}); delete it, and "
            + (
                f"`--resume` reads the run's id and flags from its checkpoints in {ckpt}"
                if ours
                else f"choose another --ckpt.output_dir: no checkpoint in {ckpt} holds the run's flags either"
            )
        ]
    run_id = saved.pop("run_id", None) if isinstance(saved, dict) else None
    if isinstance(saved, dict):
        saved.pop("prompts_sha256", None)  # (not a flag)
    if run_id is None:  # a run folder without run_config.json (or from before run ids): its checkpoints tell
        ids = list(dict.fromkeys(run["run_id"] for _, run in found if run))
        if len(ids) > 1:
            return None, [
                f"--ckpt.path {ckpt} holds the checkpoints of {len(ids)} runs and {out} has no {RUN_CONFIG} saying "
                "which one is this run's; give each run a --ckpt.path of its own"
            ]
        run_id = ids[0] if ids else None
    problems = []
    foreign = [(path, run) for path, run in found if run and run["run_id"] != run_id]
    if foreign:
        path, run = foreign[0]
        problems.append(
            f"--ckpt.path {ckpt} holds checkpoints of another run ({_whose(run)}: {path.name}), which this run must "
            "neither prune nor resume from; give each run a --ckpt.path of its own"
        )
    own = [run for _, run in found if run and run["run_id"] == run_id]
    flags = saved if isinstance(saved, dict) else (own[0]["flags"] if own else None)
    diff = cfg.differences(flags) if isinstance(flags, dict) else []
    if diff:
        problems.append(f"--resume needs the flags of the interrupted run; these differ: {', '.join(diff)}")
    return run_id, problems


def _saved_run_config(out: Path) -> tuple[dict | None, str | None]:
    """The run folder's ``run_config.json`` (None when there is none), or why it cannot be read."""
    try:
        saved = json.loads((out / RUN_CONFIG).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except OSError as e:
        return None, f"cannot read it: {e.strerror or e}"
    except ValueError as e:  # (a kill while an older version wrote it; now it is written whole or not at all)
        return None, f"not JSON: {e}"
    return (saved, None) if isinstance(saved, dict) else (None, f"a JSON {type(saved).__name__}, not an object")


def resume_prompts_problem(cfg: LocalConfig, digest: str, prompts: str) -> str | None:
    """On ``--resume``, why the prompts read now are not the ones the run trained on (their fingerprint, kept in
    ``run_config.json`` and each checkpoint, differs); None for a run that kept none (an older version's)."""
    if not cfg.args.ckpt.load_enable:
        return None
    out = Path(cfg.args.ckpt.output_dir)
    saved, where = _saved_run_config(out)[0] or {}, out / RUN_CONFIG
    kept = saved.get("prompts_sha256")
    if kept is None:
        newest = checkpoint.latest(cfg.flat["ckpt.path"], run_identity(cfg)[0])
        kept, where = (checkpoint.run_of(newest) or {}).get("prompts_sha256") if newest else None, newest
    if kept is None or kept == digest:
        return None
    return (
        f"--resume: the prompts read from {prompts} are not the ones the run trained on (changed on disk since it "
        f"started: their sha256 differs from the one in {where}); put the run's prompts back, or train on these as a "
        "new run in another --ckpt.output_dir"
    )


def position_limit(folder: str) -> int | None:
    """The positions a model was built for (``max_position_embeddings``; GPT-2's ``n_positions``), from its config."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(folder)
    except (OSError, ValueError, KeyError):  # (said in one line when the model itself loads)
        return None
    n = getattr(config, "max_position_embeddings", None)
    return n if isinstance(n, int) and n > 0 else None


def prompt_budget(cfg: LocalConfig, policy: str, reward: str | None) -> tuple[int | None, str]:
    """The most tokens a prompt may have, and what sets it: the tightest of ``--data.max_len`` (OpenRLHF's limit of
    prompt + response) and the policy's and reward model's positions, less ``--rollout.max_new_tokens``. Both models
    read the prompt and the response together, so both must hold them."""
    a = cfg.args
    limits = []
    max_len = getattr(a.data, "max_len", None)  # (read so until config.py has the flag)
    if max_len:
        limits.append((max_len, f"--data.max_len {max_len}"))
    for name, folder in (("policy", policy), ("reward model", reward)):
        n = position_limit(folder) if folder is not None else None
        if n is not None:
            limits.append((n, f"the {name}'s {n} positions ({folder})"))
    if not limits:
        return None, ""
    limit, why = min(limits, key=lambda x: x[0])
    new = a.rollout.max_new_tokens
    if limit - new < 1:
        raise ConfigError(
            f"--rollout.max_new_tokens {new} leaves no room for a prompt within {why}: give at most {limit - 1}"
        )
    return limit - new, f"{why} less --rollout.max_new_tokens {new}"


def measure_prompts(
    cfg: LocalConfig, tokenizer, prompt_set: PromptSet, prompts: str, policy: str, reward: str | None, log
) -> int | None:
    """Render and tokenize every prompt as the trainer will, before any model loads: a chat template the tokenizer
    lacks is one line; prompts too long for the models are counted in one warning line and cut to the tokens left
    (returned), as OpenRLHF 0.11.2 cuts them (openrlhf/utils/agent.py, SingleTurnAgentExecutor.execute: it keeps
    ``prompt_token_ids[-max_prompt_length:]`` with a warning), instead of crashing the reward model after generation
    or asking for gigabytes of attention."""
    a = cfg.args
    if a.data.apply_chat_template and not getattr(tokenizer, "chat_template", None):
        raise ConfigError(
            f"--data.apply_chat_template: the policy's tokenizer ({policy}) has no chat template; drop the flag (and "
            "give --data.input_template if the prompts need one), or use a model whose tokenizer has a template"
        )
    budget, why = prompt_budget(cfg, policy, reward)
    if budget is None:
        return None
    texts = format_prompts(tokenizer, prompt_set.prompts, a.data.apply_chat_template, a.data.input_template)
    backend = getattr(tokenizer, "backend_tokenizer", None)  # a fast tokenizer's own: the same ids, 10x sooner
    if backend is not None and backend.truncation is None:
        encoded = backend.encode_batch(texts, add_special_tokens=not a.data.apply_chat_template)
        lengths = [len(e.ids) for e in encoded]
    else:
        lengths = [len(ids) for ids in encode_prompts(tokenizer, texts, a.data.apply_chat_template)]
    long = [i for i, n in enumerate(lengths) if n > budget]
    if long:
        first = long[0]
        at = prompt_set.where[first] if prompt_set.where else f"row {first}"
        log(
            f"warning: {len(long)} of {len(lengths)} prompts are longer than the {budget} tokens left for a prompt "
            f"({why}), the first at {at} of {prompts} ({lengths[first]} tokens); each is cut to its last {budget} "
            "tokens, as OpenRLHF cuts them"
        )
    return budget


def input_problems(cfg: LocalConfig) -> list[str]:
    """Every path or hub name the flags give is one that could exist (nothing is fetched or imported here)."""
    from .hub import is_hub_name

    f, problems = cfg.flat, []
    for key in ("actor.model_name_or_path", "reward.model_name_or_path"):
        path = f[key]
        if path is not None and not os.path.isdir(path) and not is_hub_name(path):
            problems.append(
                f"--{key} {path}: no such folder (give a local Hugging Face model folder, a hub name such as "
                f"Qwen/Qwen2.5-0.5B-Instruct, or omit it for the embedded default)"
            )
    dataset = f["data.prompt_dataset"]
    if (
        dataset is not None
        and not os.path.exists(dataset.partition("@")[0])
        and not is_hub_name(dataset.partition("@")[0])
    ):
        problems.append(f"--data.prompt_dataset {dataset}: no such file or folder (nor a hub dataset name)")
    url = f["reward.remote_url"]
    define = "the .py file that defines reward_func(queries, prompts, labels)"
    if url is None:
        pass
    elif url.startswith(("http://", "https://")):
        problems.append(
            f"--reward.remote_url {url}: an HTTP reward server needs OpenRLHF itself; the local engine calls "
            f"reward_func from a .py file"
        )
    elif os.path.isdir(url):
        problems.append(f"--reward.remote_url {url} is a folder; give {define}")
    elif not url.endswith(".py"):
        problems.append(
            f"--reward.remote_url {url} does not end in .py: OpenRLHF reads reward_func from a .py file and takes "
            f"anything else for the URL of an HTTP reward server; give {define}"
        )
    elif not os.path.isfile(url):
        problems.append(f"--reward.remote_url {url}: no such file; give {define}")
    return problems


def reward_model_problem(folder: str) -> str | None:
    """Why ``folder`` is no reward model, read off its config alone (the weights are loaded later, if ever)."""
    from transformers import AutoConfig

    flag = f"--reward.model_name_or_path {folder}"
    try:
        config = AutoConfig.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return f"{flag}: cannot read its config.json ({reason})"
    generative = [
        a for a in config.architectures or [] if a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration"))
    ]
    if generative:
        return (
            f"{flag} is a language model ({', '.join(generative)}), not a reward model: give a sequence-classification "
            f"model with one output (num_labels=1), or verifiable rewards as --reward.remote_url FILE.py"
        )
    if config.num_labels != 1:
        return f"{flag} has num_labels={config.num_labels}; a reward model outputs one score (num_labels=1)"
    return None


def check_labels(reward_fn: RewardFunction | None, label_key: str | None, prompt_set: PromptSet) -> None:
    """A reward_func that reads its labels needs --data.label_key: without it every label is '' and every reward is
    computed against nothing (OpenRLHF 0.11.2's --data.label_key defaults to none, and it passes '' the same way)."""
    if reward_fn is None or label_key is not None or not reward_fn.reads_labels:
        return
    where = (
        f"the prompts' fields: {', '.join(prompt_set.fields)}"
        if prompt_set.fields
        else "the prompts are plain text, which have no labels: give a .jsonl or dataset with a label field"
    )
    raise ConfigError(
        f"--reward.remote_url {reward_fn.path}: reward_func reads its labels, but no --data.label_key is given, so "
        f"every label would be '' (as with OpenRLHF's default): set --data.label_key to the field with the "
        f"reference answer ({where})"
    )


def check_without_loading(cfg: LocalConfig, run_folder: bool = True) -> None:
    """Every problem that shows without importing, fetching or building anything: the device, the run folder (unless
    told, when a parent folder was found unwritable already) and the input paths."""
    problems = Problems()
    device = problems.attempt(resolve_device, cfg.args.device)
    if device is not None:
        problems.attempt(resolve_dtype, cfg.args.ds.param_dtype, device)
    for line in (run_folder_problems(cfg) if run_folder else []) + input_problems(cfg):
        problems.add(line)
    problems.add(embedded_default_problem(cfg))
    problems.raise_any()


def embedded_default_problem(cfg: LocalConfig) -> str | None:
    """The packages the embedded default needs and misses: to build it (when not cached) and, when no reward is
    given, to run its reward file."""
    if not cfg.uses_embedded_default:
        return None
    from . import embedded

    a = cfg.args
    default = embedded.get(a.embedded_default)
    return default.missing_packages(
        building=not default.is_built(), uses_reward=a.reward.model_name_or_path is None and a.reward.remote_url is None
    )


def prepare(cfg: LocalConfig, log: Callable[[str], None] = print) -> Inputs:
    """Check and load everything the run needs, cheapest first, each stage reporting all of its problems at once."""
    from .hub import resolve_dataset, resolve_model

    a = cfg.args
    check_without_loading(cfg)
    problems = Problems()
    # The user's module is imported once, here. Hub names are fetched (or found cached) and the reward model's config
    # read before the embedded default is built, so a bad name stops the run at once.
    url = a.reward.remote_url
    reward_fn = problems.attempt(RewardFunction, url) if url is not None else None
    policy = (
        problems.attempt(resolve_model, "actor.model_name_or_path", a.actor.model_name_or_path)
        if a.actor.model_name_or_path
        else None
    )
    reward = (
        problems.attempt(resolve_model, "reward.model_name_or_path", a.reward.model_name_or_path)
        if a.reward.model_name_or_path
        else None
    )
    resolved = (
        problems.attempt(resolve_dataset, "data.prompt_dataset", a.data.prompt_dataset)
        if a.data.prompt_dataset
        else None
    )
    prompts, data_dir = resolved or (None, None)
    if reward is not None:
        problems.add(reward_model_problem(reward))
    problems.raise_any()
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
    if reward_fn is None and label_key is not None:
        # Labels only reach a reward_func; a reward model scores prompt + response alone (OpenRLHF passes them on
        # without a word). Not read, so not checked either.
        log(
            f"warning: --data.label_key {label_key} is ignored: labels go to a reward_func (--reward.remote_url), "
            f"and the reward model {reward} never sees them"
        )
        label_key = None
    prompt_set = load_prompts(
        prompts,
        a.data.input_key,
        a.data.max_samples,
        label_key,
        a.data.prompt_split,
        data_dir,
        apply_chat_template=a.data.apply_chat_template,
    )
    problems.attempt(check_labels, reward_fn, label_key, prompt_set)
    sizes = Sizes.of(a, len(prompt_set))
    problems.attempt(check_sizes, cfg, sizes)
    digest = prompts_sha256(prompt_set)
    problems.add(resume_prompts_problem(cfg, digest, prompts))
    problems.raise_any()
    from transformers import AutoTokenizer

    from .hf import load_pretrained

    tokenizer = load_pretrained(AutoTokenizer, "actor.model_name_or_path", policy)
    max_prompt_tokens = measure_prompts(cfg, tokenizer, prompt_set, prompts, policy, reward, log)
    left_over = sizes.n_prompts - sizes.rollouts_per_episode * a.rollout.batch_size
    if left_over:
        # OpenRLHF 0.11.2 trains them as a smaller last rollout; here every rollout has the size the flags say.
        log(
            f"warning: {sizes.n_prompts} prompts make {sizes.rollouts_per_episode} rollout(s) of --rollout.batch_size "
            f"{a.rollout.batch_size} per episode; {left_over} are left out of each episode "
            "(which ones changes with the episode's shuffle): "
            f"use a multiple of {a.rollout.batch_size} prompts (--data.max_samples) to train on all"
        )
    return Inputs(
        policy,
        reward,
        reward_fn.path if reward_fn else None,
        reward_fn,
        prompts,
        data_dir,
        label_key,
        prompt_set,
        sizes,
        tokenizer,
        max_prompt_tokens,
        digest,
    )
