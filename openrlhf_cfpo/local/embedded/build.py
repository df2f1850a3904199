"""Building an embedded default offline, once per machine: what a default declares, its cache folder, the atomic build.

Nothing here touches the Hugging Face hub. A default's ``write`` function writes ordinary Hugging Face folders
and a ``prompts.jsonl`` into a folder; :meth:`EmbeddedDefault.build` runs it next to the target and renames the
result into place (so a killed build never leaves half a cache), and :meth:`EmbeddedDefault.cached` names the
cache folder by a digest of the build settings and builds it on first use.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from openrlhf_cfpo.paths import CACHE_VARIABLE, cache_dir

from ..errors import ConfigError
from ..outputs import cache_problem


@dataclass(frozen=True)
class Assets:
    """A built embedded default: its folder, and the reward file and label field when its rewards are verifiable."""

    root: Path
    reward_func: str | None = None  # a reward_func(queries, prompts, labels) file (OpenRLHF's --reward.remote_url)
    label_key: str | None = None  # the prompts' field that reward_func gets as its label

    @property
    def policy(self) -> str:
        return str(self.root / "policy")

    @property
    def reward(self) -> str | None:
        """The reward model folder; None for a default with verifiable rewards."""
        return str(self.root / "reward") if (self.root / "reward").is_dir() else None

    @property
    def prompts(self) -> str:
        return str(self.root / "prompts.jsonl")

    @property
    def build_info(self) -> dict:
        return json.loads((self.root / "build_info.json").read_text())


@dataclass(frozen=True)
class EmbeddedDefault:
    """One embedded default: how to build it, where it is cached, what its rewards are."""

    name: str  # its module's name, as registered in openrlhf_cfpo.local.embedded
    version: str  # bump when the build changes: the cache folder changes with it
    settings_type: type  # a frozen dataclass of build sizes with a ``seed``; its defaults are the default
    write: Callable[[Path, Any, random.Random], dict]  # writes the artefacts into a folder, returns build info
    cache_prefix: str
    build_time: str  # for the one line printed before a build
    done: Callable[[dict], str]  # the line printed after it, from the build info
    reward_func: str | None = None
    label_key: str | None = None
    # Run flags its model and prompts need (a chat template, a generation length, a learning rate): over the engine's
    # and the command's defaults, under the user's flags (see ``config.layered_settings``).
    flags: tuple[str, ...] = ()
    # Distributions (pip names) beyond the core install: to build it, and to run with its reward file; and the one
    # command that installs them.
    build_requires: tuple[str, ...] = ()
    reward_requires: tuple[str, ...] = ()
    install: str = ""

    def missing_packages(self, building: bool, uses_reward: bool = True) -> str | None:
        """One line naming every distribution this default needs and misses (to build it, when ``building``; to run its
        reward file, when ``uses_reward``), with the command that installs them; None when nothing is missing."""
        needed = [*(self.build_requires if building else ()), *(self.reward_requires if uses_reward else ())]
        missing = [name for name in dict.fromkeys(needed) if not _installed(name)]
        if not missing:
            return None
        return f"--embedded_default {self.name} needs {', '.join(missing)} (missing here). Install with: {self.install}"

    def is_built(self, settings=None) -> bool:
        return (cache_dir() / self.cache_name(settings) / "build_info.json").exists()

    def assets(self, root: str | os.PathLike) -> Assets:
        return Assets(Path(root), self.reward_func, self.label_key)

    def cache_name(self, settings=None) -> str:
        """The cache folder of ``settings``: the same in every process (a digest, not the salted hash())."""
        settings = self.settings_type() if settings is None else settings
        if settings == self.settings_type():
            return f"{self.cache_prefix}-{self.version}"
        digest = hashlib.sha256(repr(sorted(settings.__dict__.items())).encode()).hexdigest()[:12]
        return f"{self.cache_prefix}-{self.version}-{digest}"

    def build(self, out_dir: str | os.PathLike, settings=None) -> Assets:
        """Build into ``out_dir`` (replacing it). Deterministic for given ``settings``."""
        settings = self.settings_type() if settings is None else settings
        problem = self.missing_packages(building=True, uses_reward=False)
        if problem:
            raise ConfigError(problem)
        t0 = time.time()
        threads = torch.get_num_threads()
        # Models this small run fastest on one thread: more threads only add OpenMP synchronisation.
        torch.set_num_threads(1)
        torch.manual_seed(settings.seed)
        rng = random.Random(settings.seed)
        out = Path(out_dir)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        # Build next to the target and rename, so a killed build never leaves a half-written cache.
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=out.parent if out.parent.exists() else None))
        try:
            built = self.write(tmp, settings, rng)
            info = {
                "version": self.version,
                "embedded_default": self.name,
                "settings": settings.__dict__,
                **built,
                "build_seconds": round(time.time() - t0, 1),
            }
            (tmp / "build_info.json").write_text(json.dumps(info, indent=2))
            if out.exists():
                shutil.rmtree(out)
            out.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, out)
        finally:
            torch.set_num_threads(threads)
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return self.assets(out)

    def cached(self, settings=None, log: Callable[[str], None] = print) -> Assets:
        """The cached build of ``settings`` (the default's own unless told), built on first use."""
        root = cache_dir() / self.cache_name(settings)
        if self.is_built(settings):
            return self.assets(root)
        # (said before the line that it builds)
        problems = [self.missing_packages(building=True, uses_reward=False), cache_problem(root.parent, CACHE_VARIABLE)]
        if any(problems):
            raise ConfigError(*filter(None, problems))
        root.parent.mkdir(parents=True, exist_ok=True)
        log(f"building the embedded {self.name} default into {root} (once; {self.build_time}) ...")
        assets = self.build(root, settings)
        info = assets.build_info
        log(f"built in {info['build_seconds']}s: {self.done(info)}")
        return assets


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.version(distribution)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False
