"""Which model an eval run answers with: a local folder by what it holds, a hub name by its resolved revision.

Answers on disk belong to the model that produced them, so a run folder records the model's identity and
refuses another. The identity is what the model is, not how `--model` spells it:
- a local folder: a fingerprint of its files (name, size and content; files up to 1 MiB whole, larger ones,
  the weights, through 256 evenly spaced 4 KiB samples). `./tiny/`, `tiny` and its absolute path are one model,
  and a copy of a checkpoint is the same model; another checkpoint saved into the same path is not, since
  training changes nearly every weight and 256 samples per weight file see it (even an update confined to one
  projection matrix per layer, ~7% of a Llama layer's bytes, is missed with probability ~1e-8). Reading
  every byte would take minutes for an 8B model; modification times would refuse a copied checkpoint.
- a hub name: the commit the name resolves to (the hub's answer when online, the cache's `refs` offline),
  and that revision is the one loaded.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import EvalError

WHOLE_FILE_BYTES = 1 << 20
SAMPLES = 256
SAMPLE_BYTES = 4096
# owner/name or name, as the hub allows them.
_HUB_NAME = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*$")


@dataclass(frozen=True)
class ModelRef:
    given: str  # --model as typed
    path: str | None = None  # a local folder, absolute
    fingerprint: str | None = None
    hub: str | None = None  # a hub name
    revision: str | None = None  # the commit it resolved to

    @property
    def source(self) -> str:
        """What loaders are given: the absolute folder or the hub name (with `revision`)."""
        return self.path or self.hub

    def identity(self) -> dict:
        if self.path:
            return {"fingerprint": self.fingerprint, "path": self.path}
        return {"hub": self.hub, "revision": self.revision}

    @property
    def name(self) -> str:
        """A readable name: the folder's name or the hub name."""
        return Path(self.path).name if self.path else self.hub


def same_model(a: dict, b: dict) -> bool:
    """One model: the same files (wherever the folder is) or the same hub revision."""
    if "fingerprint" in a or "fingerprint" in b:
        return a.get("fingerprint") == b.get("fingerprint")
    return (a.get("hub"), a.get("revision")) == (b.get("hub"), b.get("revision"))


def describe(identity: dict) -> str:
    if "fingerprint" in identity:
        return f"the model folder {identity.get('path')} (fingerprint {str(identity['fingerprint'])[:12]})"
    return f"{identity.get('hub')} at revision {str(identity.get('revision'))[:12]}"


def fingerprint(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        size = f.stat().st_size
        h.update(f"{f.name}\0{size}\0".encode())
        with open(f, "rb") as fh:
            if size <= WHOLE_FILE_BYTES:
                h.update(fh.read())
                continue
            last = size - SAMPLE_BYTES
            for i in range(SAMPLES):
                fh.seek(last * i // (SAMPLES - 1))
                h.update(fh.read(SAMPLE_BYTES))
    return h.hexdigest()


def is_hub_name(text: str) -> bool:
    return bool(_HUB_NAME.match(text)) and ".." not in text


def local_problem(text: str) -> str | None:
    """Why `--model text` is no usable local folder (None when it is one, or when it can only be a hub name)."""
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            return f"--model {text} is a file; pass a Hugging Face model folder (with config.json) or a hub name"
        if not (path / "config.json").is_file():
            return f"--model {text} has no config.json; pass the folder a Hugging Face checkpoint was saved to"
        return None
    if not is_hub_name(text):
        return (
            f"--model {text}: no such folder; pass a Hugging Face model folder or a hub name such as "
            "Qwen/Qwen2.5-3B-Instruct"
        )
    return None


def resolve(text: str, offline: bool | None = None) -> ModelRef:
    """The model `--model text` names; EvalError (one line) when it names none."""
    problem = local_problem(text)
    if problem:
        raise EvalError(problem)
    path = Path(text).expanduser()
    if path.exists():
        folder = path.resolve()
        return ModelRef(text, path=str(folder), fingerprint=fingerprint(folder))
    return ModelRef(text, hub=text, revision=hub_revision(text, offline))


def hub_revision(name: str, offline: bool | None = None) -> str:
    from huggingface_hub import constants, try_to_load_from_cache

    offline = constants.HF_HUB_OFFLINE if offline is None else offline
    if offline:
        cached = try_to_load_from_cache(name, "config.json")
        if not isinstance(cached, str):
            raise EvalError(
                f"--model {name} is neither a folder nor in the Hugging Face cache, and the hub is offline "
                "(HF_HUB_OFFLINE); pass a model folder, or download it where the hub is reachable"
            )
        return Path(cached).parent.name  # .../snapshots/<commit>/config.json
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    try:
        return HfApi().model_info(name, timeout=float(os.environ.get("HF_HUB_ETAG_TIMEOUT", 10))).sha
    except RepositoryNotFoundError:
        raise EvalError(
            f"--model {name}: no such folder, and no such model on the hub (or it is private: set HF_TOKEN)"
        ) from None
    except (HfHubHTTPError, OSError) as e:
        raise EvalError(
            f"--model {name}: cannot ask the hub for it ({type(e).__name__}: {' '.join(str(e).split())[:200]}); "
            "pass a model folder, or set HF_HUB_OFFLINE=1 to use the cached copy"
        ) from None
