"""Verifiable rewards through OpenRLHF 0.11.2's own interface: ``--reward.remote_url FILE.py``.

The file defines ``reward_func(queries, prompts, labels)`` and returns
``{"rewards": tensor, "scores": tensor, "extra_logs": dict}``. It is loaded and called as OpenRLHF's
``SingleTurnAgentExecutor`` does, so one file serves the laptop and the cluster unchanged:

- loaded with ``importlib`` from the file path (a module named ``reward_func``);
- called once per sample, with lists of length one: ``queries`` = the prompt's and the response's
  tokens decoded together with special tokens kept (``skip_special_tokens=False``: an EOS the policy
  generated shows, padding does not); ``prompts`` = the prompt text as formatted for the policy (chat
  template or ``--data.input_template`` applied); ``labels`` = the dataset's ``--data.label_key`` field
  (``""`` without one);
- ``rewards`` is what training uses (the group baseline and advantages are computed from it);
  ``scores`` (``rewards`` when absent) is OpenRLHF's score for dynamic filtering, logged here as
  ``score``; each ``extra_logs`` entry is logged under its own name, as a mean over the step's samples; a tensor
  on a GPU is read on the CPU (OpenRLHF reads plain values too), one on the ``meta`` device (no values) is refused;
- run in a worker thread, as OpenRLHF's ``asyncio.to_thread`` runs it (openrlhf/utils/agent.py,
  ``_fetch_rewards_via_func``): the main thread keeps answering Ctrl-C and SIGTERM, says in one line when a call has run
  for ``SLOW_CALL_S`` seconds, and with ``--reward.timeout`` stops the run when a call outlasts it (a thread cannot be
  killed: the call is abandoned and the process must exit to end it).
"""

from __future__ import annotations

import dis
import importlib.util
import inspect
import threading
import time
from collections.abc import Callable
from typing import Any

import torch

from .errors import ConfigError, RewardFuncError


def load_reward_func(path: str) -> Callable:
    """Import ``path`` (an existing file: see :func:`.preflight.input_problems`) as OpenRLHF does and return its
    ``reward_func``; bad files are one ConfigError line."""
    flag = f"--reward.remote_url {path}"
    spec = importlib.util.spec_from_file_location("reward_func", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the user's module: any error while importing it is bad input
        raise ConfigError(f"{flag}: importing it raised {type(e).__name__}: {e}") from None
    fn = getattr(module, "reward_func", None)
    if not callable(fn):
        names = [n for n in vars(module) if not n.startswith("_") and callable(getattr(module, n))]
        raise ConfigError(
            f"{flag} defines no reward_func(queries, prompts, labels) (OpenRLHF calls that name; it defines: "
            f"{', '.join(names) or 'no functions'})"
        )
    try:
        inspect.signature(fn).bind([], [], [])
    except TypeError:
        raise ConfigError(
            f"{flag}: reward_func{inspect.signature(fn)} cannot be called as reward_func(queries, prompts, labels)"
        ) from None
    except ValueError:  # builtins without a signature: let the first call tell
        pass
    return fn


def reads_labels(fn: Callable) -> bool:
    """Whether ``reward_func`` reads its third argument, the labels (True when its code cannot tell)."""
    fn = inspect.unwrap(fn)
    code = getattr(fn, "__code__", None)
    if code is None or code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS) or code.co_argcount < 3:
        return True
    name = code.co_varnames[2]
    if name in code.co_cellvars:  # read inside a nested function or comprehension
        return True
    return any(
        ins.opname.startswith("LOAD_FAST") and name in (ins.argval if isinstance(ins.argval, tuple) else (ins.argval,))
        for ins in dis.get_instructions(code)
    )


# A reward_func call running this long gets one warning line: it may be waiting on something that never answers.
SLOW_CALL_S = 60.0


class RewardTimeout(RewardFuncError):
    """A reward_func call ran past ``--reward.timeout``; it is still running, in a thread nothing can stop."""


def _shorten(text: str, limit: int = 120) -> str:
    return repr(text if len(text) <= limit else text[: limit // 2] + " ... " + text[-limit // 2 :])


def _one_value(value: Any, what: str, path: str) -> float:
    if isinstance(value, torch.Tensor) and value.is_meta:
        raise RewardFuncError(
            f"--reward.remote_url {path}: reward_func returned its {what} as a tensor on the meta device, which holds "
            "no values; return numbers or tensors on a real device"
        )
    try:
        # (a tensor on a GPU is copied to the CPU, as float() would: OpenRLHF reads plain values from reward_func too)
        t = torch.as_tensor(value, dtype=torch.float32) if not isinstance(value, torch.Tensor) else value.detach().cpu()
    except (TypeError, ValueError, RuntimeError):
        raise RewardFuncError(
            f"--reward.remote_url {path}: reward_func returned {value!r} as its {what}, which is no number"
        ) from None
    if t.numel() != 1:
        raise RewardFuncError(
            f"--reward.remote_url {path}: reward_func returned {t.numel()} {what} for one query "
            f"(OpenRLHF calls it with one sample at a time and reads one value)"
        )
    return float(t.reshape(-1)[0])


class RewardFunction:
    """``reward_func`` applied to a rollout, sample by sample as OpenRLHF applies it."""

    def __init__(self, path: str):
        self.path = path
        self.fn = load_reward_func(path)
        self.reads_labels = reads_labels(self.fn)

    def __call__(
        self,
        queries: list[str],
        prompts: list[str],
        labels: list[Any],
        timeout: float | None = None,
        log: Callable[[str], None] | None = None,
        batch: str = "the rollout",
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Rewards, scores and extra_logs of every sample; ``timeout`` (seconds) bounds each call, ``log`` gets the
        warning of a slow one, ``batch`` names the samples' batch in both."""
        rewards, scores, extra = [], [], {}
        for i, (q, p, y) in enumerate(zip(queries, prompts, labels)):
            where = f"sample {i + 1}/{len(queries)} of {batch}"
            out = self._call(q, p, y, where, timeout, log)
            if not isinstance(out, dict):
                raise RewardFuncError(
                    f"--reward.remote_url {self.path}: reward_func must return a dict with 'rewards' "
                    f"(and optionally 'scores', 'extra_logs'), got {type(out).__name__}"
                )
            if out.get("rewards") is None:
                has = "its 'rewards' is None" if "rewards" in out else "the key 'rewards' is missing"
                raise RewardFuncError(
                    f"--reward.remote_url {self.path}: reward_func returned a dict in which {has} (its keys: "
                    f"{', '.join(map(repr, out)) or 'none'}); OpenRLHF trains on its 'rewards'"
                )
            r = _one_value(out["rewards"], "rewards", self.path)
            rewards.append(r)
            scores.append(r if out.get("scores") is None else _one_value(out["scores"], "scores", self.path))
            for k, v in (out.get("extra_logs") or {}).items():
                # One value per query, logged as the mean over a step's samples (OpenRLHF would keep the first of
                # several).
                extra.setdefault(k, [float("nan")] * i).append(
                    _one_value(v, f"values for extra_logs[{k!r}]", self.path)
                )
            for k in extra:
                if len(extra[k]) < i + 1:
                    extra[k].append(float("nan"))
        return (torch.tensor(rewards), torch.tensor(scores), {k: torch.tensor(v) for k, v in extra.items()})

    def _call(self, q: str, p: str, y: Any, where: str, timeout: float | None, log: Callable[[str], None] | None):
        """``reward_func([q], [p], [y])`` in a worker thread, watched from this one (see the module's docstring)."""
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["out"] = self.fn([q], [p], [y])
            except BaseException as e:  # (SystemExit too: in a thread it would vanish without a word)
                box["error"] = e

        worker = threading.Thread(target=run, name="reward_func", daemon=True)
        start = time.monotonic()
        worker.start()
        warned = False
        while True:
            waited = time.monotonic() - start
            # Wake at least every second: a signal that lands on the worker thread is handled here only when awake.
            wake = [1.0, SLOW_CALL_S - waited] if not warned else [1.0]
            worker.join(max(min(wake + ([timeout - waited] if timeout is not None else [])), 0.0))
            if not worker.is_alive():
                break
            waited = time.monotonic() - start
            if timeout is not None and waited >= timeout:
                raise RewardTimeout(
                    f"--reward.remote_url {self.path}: reward_func did not return within --reward.timeout {timeout:g} "
                    f"s ({where}, query {_shorten(q)})"
                )
            if not warned and waited >= SLOW_CALL_S:
                warned = True
                stop = (
                    f"--reward.timeout {timeout:g} s stops the run"
                    if timeout is not None
                    else "Ctrl-C stops the run, saved; --reward.timeout SECONDS stops it by itself"
                )
                (log or print)(
                    f"warning: reward_func of {self.path} has run for {waited:.0f} s on {where} and not returned; "
                    f"still waiting ({stop})"
                )
        error = box.get("error")
        if isinstance(error, SystemExit):
            raise RewardFuncError(
                f"--reward.remote_url {self.path}: reward_func called sys.exit({error.code!r}) (on query "
                f"{_shorten(q)}, label {y!r}); it must return {{'rewards': ...}}, not exit"
            )
        if isinstance(error, Exception):  # the user's code: name it, with the input that made it fail
            raise RewardFuncError(
                f"--reward.remote_url {self.path}: reward_func raised {type(error).__name__}: {error} "
                f"(on query {q!r}, label {y!r})"
            ) from error
        if error is not None:  # KeyboardInterrupt and the like: as if raised here
            raise error
        return box["out"]
