"""Models and prompt sets by local path or Hugging Face hub name, as OpenRLHF takes them.

A name that exists on disk is a local folder or file. Anything else that is a valid hub repository id
(``Qwen/Qwen2.5-0.5B-Instruct``, ``gpt2``) is fetched once into the Hugging Face cache with
``huggingface_hub.snapshot_download`` and then loaded from that local snapshot, so the rest of the
engine only ever sees folders. Offline (``HF_HUB_OFFLINE=1``, or no connection to the hub) a cached
snapshot is used as is; a name that is not cached stops the run with one line that names it and says
what to do, before any model is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError

# What ``from_pretrained`` reads for a causal LM, a sequence classifier and their tokenizer; weights in
# PyTorch pickles only for repositories without safetensors (see ``resolve_model``).
MODEL_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken", "tokenizer*"]
PICKLED_WEIGHTS = ["*.bin", "*.bin.index.json"]
_TRUE = {"1", "on", "yes", "true"}


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` (or transformers' older ``TRANSFORMERS_OFFLINE``), read now rather than at import."""
    return any(os.environ.get(k, "").strip().lower() in _TRUE for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def is_hub_name(name: str) -> bool:
    """True for what could only be a hub repository id: not on disk, not path-like, a valid ``owner/name``."""
    if (
        os.path.exists(name)
        or name.startswith((".", "/", "~"))
        or name.count("/") > 1
        or os.sep != "/"
        and os.sep in name
    ):
        return False
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def _cache_hint() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def _snapshot(flag: str, name: str, repo_type: str, allow_patterns: list[str] | None) -> str:
    from huggingface_hub import errors as E
    from huggingface_hub import snapshot_download

    offline = hub_offline()
    kind = "dataset" if repo_type == "dataset" else "model"
    local = "file or folder" if kind == "dataset" else "folder"
    where = f"--{flag} {name}: not a local {local}, and the Hugging Face hub {kind} {name}"
    download = f"`hf download {'--repo-type dataset ' if kind == 'dataset' else ''}{name}`"
    try:
        return snapshot_download(name, repo_type=repo_type, allow_patterns=allow_patterns, local_files_only=offline)
    except E.GatedRepoError:
        raise ConfigError(
            f"{where} is gated: accept its terms on huggingface.co, then `hf auth login` or set HF_TOKEN"
        ) from None
    except E.RepositoryNotFoundError:
        raise ConfigError(
            f"{where} does not exist (or is private: `hf auth login` or set HF_TOKEN); check the name"
        ) from None
    except E.IncompleteSnapshotError:
        raise ConfigError(
            f"{where} is only partly in the cache ({_cache_hint()}) and the hub cannot be reached: "
            f"run {download} once with network access"
        ) from None
    except E.LocalEntryNotFoundError:
        if offline:
            raise ConfigError(
                f"{where} is not in the cache ({_cache_hint()}) and HF_HUB_OFFLINE=1 forbids downloading it: "
                f"run {download} once with network access (or unset HF_HUB_OFFLINE), or give a local {kind} {local}"
            ) from None
        raise ConfigError(
            f"{where} is not in the cache ({_cache_hint()}) and the hub cannot be reached (no network?): "
            f"run {download} where there is network and copy the cache, set HF_ENDPOINT to a mirror, or give a "
            f"local {kind} path"
        ) from None
    except E.HfHubHTTPError as e:
        raise ConfigError(f"{where}: the hub answered {str(e).splitlines()[0]}") from None


def resolve_model(flag: str, name: str) -> str:
    """A local folder for ``name``: the folder itself, or the hub snapshot in the Hugging Face cache."""
    if os.path.isdir(name):
        return name
    if not is_hub_name(name):
        raise ConfigError(
            f"--{flag} {name}: no such folder (give a local Hugging Face model folder, a hub name such as "
            f"Qwen/Qwen2.5-0.5B-Instruct, or omit it for the embedded default)"
        )
    folder = _snapshot(flag, name, "model", MODEL_FILES)
    if not any(Path(folder).glob("*.safetensors")):
        folder = _snapshot(flag, name, "model", MODEL_FILES + PICKLED_WEIGHTS)
    return folder


def resolve_dataset(flag: str, name: str) -> tuple[str, str | None]:
    """``(local path, data_dir)`` for a prompt set: a local file or folder, or a hub dataset's snapshot.

    ``NAME@DIR`` selects a sub-folder of the dataset, as OpenRLHF's ``blending_datasets`` reads it.
    """
    base, _, data_dir = name.partition("@")
    base, data_dir = base.strip(), data_dir.strip() or None
    if os.path.exists(base):
        return base, data_dir
    if not is_hub_name(base):
        raise ConfigError(
            f"--{flag} {name}: no such file or folder (give a .jsonl/.json/.txt/.parquet file, a folder, or a hub "
            "dataset name)"
        )
    patterns = [f"{data_dir}/**", "*.md"] if data_dir else None
    return _snapshot(flag, base, "dataset", patterns), data_dir
