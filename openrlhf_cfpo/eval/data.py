"""Benchmark data files: where each official file comes from, the download cache, and `--data-dir`.

Questions, baseline/reference answers and judge prompts are data, never code: they are fetched from
their official sources on first use and cached under `<cache>/data/<relative path>`. With
`--data-dir DIR` nothing is downloaded and each file is read from `DIR/<relative path>`, the layout below
(the official file names and relative paths of each project's data folder).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from openrlhf_cfpo.paths import cache_dir as default_cache_dir

from .errors import EvalError

# arena-hard-auto moved its v0.1 judge prompt from a YAML file into Python at its v2 release, so the
# YAML is taken from the v0.1 release commit; questions and baseline answers from a fixed later commit.
_ARENA_V01_RELEASE = "7f1b7f5dd6ce53e1f8530220ceb452b7019a8056"
_ARENA_DATA_COMMIT = "196f6b826783b3da7310e361a805fa36f0be83f3"
_ARENA_RAW = "https://raw.githubusercontent.com/lmarena/arena-hard-auto"
_FASTCHAT_RAW = "https://raw.githubusercontent.com/lm-sys/FastChat/main/fastchat/llm_judge/data"
_IFEVAL_RAW = "https://raw.githubusercontent.com/google-research/google-research/master/instruction_following_eval/data"


@dataclass(frozen=True)
class Source:
    url: str = ""  # a plain HTTPS file
    hf_repo: str = ""  # or a file in a Hugging Face dataset repo
    hf_filename: str = ""
    hint: str = ""  # what to do when the download fails (e.g. a gated dataset)
    gated: bool = False  # a hub dataset that needs a token

    def describe(self) -> str:
        return self.url or f"https://huggingface.co/datasets/{self.hf_repo} ({self.hf_filename})"

    def origin(self) -> str:
        """The server a download talks to (scheme and host), probed once before any download starts."""
        if self.url:
            parts = urlsplit(self.url)
            return f"{parts.scheme}://{parts.netloc}"
        from huggingface_hub import constants

        return constants.ENDPOINT


# Keys are the relative paths inside --data-dir.
SOURCES = {
    "mt_bench/question.jsonl": Source(url=f"{_FASTCHAT_RAW}/mt_bench/question.jsonl"),
    "mt_bench/reference_answer/gpt-4.jsonl": Source(url=f"{_FASTCHAT_RAW}/mt_bench/reference_answer/gpt-4.jsonl"),
    "judge_prompts.jsonl": Source(url=f"{_FASTCHAT_RAW}/judge_prompts.jsonl"),
    "arena-hard-v0.1/question.jsonl": Source(
        url=f"{_ARENA_RAW}/{_ARENA_DATA_COMMIT}/data/arena-hard-v0.1/question.jsonl"
    ),
    "arena-hard-v0.1/model_answer/gpt-4-0314.jsonl": Source(
        url=f"{_ARENA_RAW}/{_ARENA_DATA_COMMIT}/data/arena-hard-v0.1/model_answer/gpt-4-0314.jsonl"
    ),
    "config/judge_config.yaml": Source(url=f"{_ARENA_RAW}/{_ARENA_V01_RELEASE}/config/judge_config.yaml"),
    # The alpaca_eval dataset script does not load with datasets>=4, so the files are taken directly.
    "alpaca_eval/alpaca_eval_gpt4_baseline.json": Source(
        hf_repo="tatsu-lab/alpaca_eval", hf_filename="alpaca_eval_gpt4_baseline.json"
    ),
    "alpaca_eval/df_gamed.csv": Source(hf_repo="tatsu-lab/alpaca_eval", hf_filename="df_gamed.csv"),
    "ifeval/input_data.jsonl": Source(url=f"{_IFEVAL_RAW}/input_data.jsonl"),
    # The reasoning benchmarks: each file as its Hugging Face dataset repo holds it (the split lighteval
    # evaluates), kept at <repo id>/<file> so --data-dir takes a plain copy of the repo.
    "HuggingFaceH4/MATH-500/test.jsonl": Source(hf_repo="HuggingFaceH4/MATH-500", hf_filename="test.jsonl"),
    "openai/gsm8k/main/test-00000-of-00001.parquet": Source(
        hf_repo="openai/gsm8k", hf_filename="main/test-00000-of-00001.parquet"
    ),
    "HuggingFaceH4/aime_2024/data/train-00000-of-00001.parquet": Source(
        hf_repo="HuggingFaceH4/aime_2024", hf_filename="data/train-00000-of-00001.parquet"
    ),
    "Idavidrein/gpqa/gpqa_diamond.csv": Source(
        hf_repo="Idavidrein/gpqa",
        hf_filename="gpqa_diamond.csv",
        gated=True,
        hint="GPQA is gated: accept its terms at https://huggingface.co/datasets/Idavidrein/gpqa and set HF_TOKEN "
        "(or run `hf auth login`), or",
    ),
}


class DataFiles:
    """Resolves a relative data path to a local file, downloading into the cache when allowed."""

    def __init__(self, data_dir: os.PathLike | None = None, cache_dir: os.PathLike | None = None):
        self.data_dir = Path(data_dir) if data_dir else None
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()

    def local(self, rel: str) -> Path:
        """Where `rel` is read from: DIR/rel with --data-dir, else its place in the download cache."""
        return self.data_dir / rel if self.data_dir is not None else self.cache_dir / "data" / rel

    def missing_from_data_dir(self, rel: str) -> str | None:
        """Why `rel` cannot be read from --data-dir (None without --data-dir or when it is there)."""
        if self.data_dir is None or self.local(rel).is_file():
            return None
        return (
            f"--data-dir {self.data_dir} has no {rel}; put the official file there "
            f"(from {SOURCES[rel].describe()}) or drop --data-dir to download it"
        )

    def to_download(self, rel: str) -> bool:
        return self.data_dir is None and not self.local(rel).is_file()

    def path(self, rel: str) -> Path:
        problem = self.missing_from_data_dir(rel)
        if problem:
            raise EvalError(problem)
        if self.to_download(rel):
            _download(SOURCES[rel], self.local(rel), rel)
        return self.local(rel)

    def jsonl(self, rel: str) -> list[dict]:
        return read_jsonl(self.path(rel), what=rel)

    def json(self, rel: str):
        path = self.path(rel)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise EvalError(f"{path} is not valid JSON ({e}); replace it with the official {rel}") from None

    def parquet(self, rel: str) -> list[dict]:
        import pyarrow.parquet as pq

        path = self.path(rel)
        try:
            return pq.read_table(path).to_pylist()
        except Exception as e:  # pyarrow raises several types for a damaged file
            raise EvalError(
                f"{path} is not a readable parquet file ({_one_line(e)}); replace it with the official {rel}"
            ) from None

    def csv(self, rel: str) -> list[dict]:
        import csv

        path = self.path(rel)
        try:
            with open(path, newline="", encoding="utf-8") as f:
                return list(csv.DictReader(f))
        except (csv.Error, UnicodeDecodeError) as e:
            raise EvalError(
                f"{path} is not a readable CSV file ({_one_line(e)}); replace it with the official {rel}"
            ) from None

    def yaml(self, rel: str) -> dict:
        import yaml

        path = self.path(rel)
        try:
            return yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise EvalError(f"{path} is not valid YAML ({e}); replace it with the official {rel}") from None


def read_jsonl(path: Path, what: str = "") -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise EvalError(
                        f"{path} line {n} is not JSON ({e}); replace it with the official {what or path.name}"
                    ) from None
    return rows


def _download(source: Source, dest: Path, rel: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    try:
        if source.url:
            import httpx

            with httpx.stream("GET", source.url, follow_redirects=True, timeout=60) as r:
                r.raise_for_status()
                with open(tmp, "wb") as f:
                    for chunk in r.iter_bytes():
                        f.write(chunk)
        else:
            import shutil

            from huggingface_hub import hf_hub_download

            shutil.copyfile(hf_hub_download(source.hf_repo, source.hf_filename, repo_type="dataset"), tmp)
    except Exception as e:  # any network or hub failure ends in the same advice
        tmp.unlink(missing_ok=True)
        raise EvalError(download_problem(rel, f"{type(e).__name__}: {_one_line(e)}")) from None
    # Renaming only a complete file keeps a killed download from leaving a truncated cache entry.
    os.replace(tmp, dest)


def download_problem(rel: str, why: str) -> str:
    """The one line for a data file that could not be downloaded, with what to do instead."""
    source = SOURCES[rel]
    hint = f"{source.hint} " if source.hint else ""
    return (
        f"could not download {rel} from {source.describe()} ({why}); "
        f"{hint}fetch it by hand into DIR/{rel} and pass --data-dir DIR"
    )


def _one_line(e: Exception) -> str:
    """An exception's message on one line: hub errors span several, and the CLI promises a single error line."""
    return " ".join(str(e).split())
