"""Client for an OpenAI-compatible judge: bounded concurrency, retries with backoff, and an on-disk cache.

Retries (429, 5xx, timeouts, dropped connections) are the `openai` client's own: exponential backoff with
jitter that honours the server's Retry-After. Every answered request is stored in a SQLite cache keyed by
the judge model and the request body, committed as it arrives, so a rerun or a resume after a kill
costs no judge calls for anything already answered. The endpoint's URL is not part of the key: the same
model behind another proxy is the same judge.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import EvalError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
NOT_JSON = "a body that is not JSON"
NOT_JSON_FIX = "check that --judge-base-url / OPENAI_BASE_URL is an OpenAI-compatible API (usually ending in /v1)"


@dataclass
class JudgeConfig:
    model: str
    base_url: str | None = None
    api_key: str | None = None
    concurrency: int = 64
    max_retries: int = 6
    timeout_s: float = 300.0
    cache_path: Path | None = None

    def resolved(self) -> JudgeConfig:
        base = self.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        key = self.api_key or os.environ.get("OPENAI_API_KEY")
        return JudgeConfig(self.model, base, key, self.concurrency, self.max_retries, self.timeout_s, self.cache_path)


def request_key(model: str, request: dict) -> str:
    body = json.dumps({"judge": model, "request": request}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


class JudgeCache:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path))
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS judgments (key TEXT PRIMARY KEY, judge TEXT, request TEXT, response TEXT)"
        )
        self.db.commit()

    def get(self, key: str) -> dict | None:
        row = self.db.execute("SELECT response FROM judgments WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, judge: str, request: dict, response: dict) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO judgments VALUES (?, ?, ?, ?)",
            (key, judge, json.dumps(request, ensure_ascii=False), json.dumps(response, ensure_ascii=False)),
        )
        self.db.commit()

    def close(self) -> None:
        self.db.close()


class Judge:
    """Sends chat-completion requests (dicts of create() arguments, without `model`) to one judge model."""

    def __init__(self, config: JudgeConfig):
        self.config = config.resolved()
        self.cache_path = self.config.cache_path
        self.calls = 0  # requests that reached the endpoint (cache misses), for the results' settings

    def settings(self) -> dict:
        return {"judge_model": self.config.model, "judge_base_url": self.config.base_url}

    def key_problem(self) -> str | None:
        """Why no request can be sent (a missing key), found without touching the network."""
        if self.config.api_key:
            return None
        return (
            "no judge API key: set OPENAI_API_KEY (any non-empty value for a local endpoint) "
            f"for the judge at {self.config.base_url}"
        )

    def endpoint_problem(self, timeout_s: float = 20.0) -> str | None:
        """Why the endpoint will not answer (unreachable, key rejected), from one request that is never retried."""
        import openai

        cfg = self.config
        client = openai.OpenAI(base_url=cfg.base_url, api_key=cfg.api_key, max_retries=0, timeout=timeout_s)
        try:
            client.models.list()
        except openai.AuthenticationError:
            return f"the judge endpoint {cfg.base_url} rejected the API key (401); set a valid OPENAI_API_KEY"
        except openai.NotFoundError:
            pass  # some compatible servers do not list models; the endpoint answered, which is all we check
        except (openai.APIConnectionError, openai.APITimeoutError) as e:
            return f"cannot reach the judge endpoint {cfg.base_url} ({e}); check --judge-base-url / OPENAI_BASE_URL"
        except openai.APIStatusError as e:
            return f"the judge endpoint {cfg.base_url} answered HTTP {e.status_code} to a model listing; check it is up"
        except ValueError as e:  # the body is not JSON (json.JSONDecodeError): not an OpenAI-compatible API
            return f"the judge endpoint {cfg.base_url} answered a model listing with {NOT_JSON} ({e}); {NOT_JSON_FIX}"
        finally:
            client.close()
        return None

    def complete_many(self, requests: Sequence[dict], desc: str = "judging") -> list[dict]:
        """Responses (as dicts) in request order; raises after all others finished if some never succeeded."""
        return asyncio.run(self._complete_many(list(requests), desc))

    async def _complete_many(self, requests: list[dict], desc: str) -> list[dict]:
        import openai
        from tqdm.auto import tqdm

        cfg = self.config
        cache = JudgeCache(self.cache_path) if self.cache_path else None
        results: list[dict | None] = [None] * len(requests)
        keys = [request_key(cfg.model, r) for r in requests]
        todo = []
        for i, k in enumerate(keys):
            hit = cache.get(k) if cache else None
            if hit is not None:
                results[i] = hit
            else:
                todo.append(i)
        errors: list[str] = []
        if todo:
            client = openai.AsyncOpenAI(
                base_url=cfg.base_url, api_key=cfg.api_key, max_retries=cfg.max_retries, timeout=cfg.timeout_s
            )
            sem = asyncio.Semaphore(cfg.concurrency)
            # Identical requests (e.g. a repeated prompt) go to the judge once.
            first_of: dict[str, int] = {}
            for i in todo:
                first_of.setdefault(keys[i], i)
            # The bar counts what is sent, so duplicates are not in its total (it would never be reached).
            bar = tqdm(total=len(first_of), desc=f"{desc} ({cfg.model})", unit="req")

            async def one(i: int) -> None:
                async with sem:
                    try:
                        resp = await client.chat.completions.create(model=cfg.model, **requests[i])
                    except openai.OpenAIError as e:
                        errors.append(f"{type(e).__name__} after {cfg.max_retries} retries: {e}")
                        return
                    except ValueError as e:  # json.JSONDecodeError: never retried, the endpoint is the wrong kind
                        errors.append(f"{NOT_JSON} ({e}); {NOT_JSON_FIX}")
                        return
                    finally:
                        bar.update(1)
                self.calls += 1
                data = resp.model_dump()
                results[i] = data
                if cache:
                    cache.put(keys[i], cfg.model, requests[i], data)

            try:
                await asyncio.gather(*(one(i) for i in first_of.values()))
            finally:
                bar.close()
                await client.close()
            for i in todo:
                if results[i] is None and results[first_of[keys[i]]] is not None:
                    results[i] = results[first_of[keys[i]]]
        if cache:
            cache.close()
        if errors:
            raise EvalError(
                f"{len(errors)} of {len(requests)} requests to the judge at {cfg.base_url} failed "
                f"(last: {errors[-1][:300]}); rerun the same command: answered ones are cached and not sent again"
            )
        return results  # type: ignore[return-value]


def message_text(response: dict) -> str:
    return (response["choices"][0]["message"].get("content") or "").strip()


def make_judge(args, cache_dir: Path) -> Judge:
    """The judge the CLI's flags describe (their defaults are JudgeConfig's and the benchmark's declared judge)."""
    return Judge(
        JudgeConfig(
            model=args.judge_model,
            base_url=args.judge_base_url,
            concurrency=args.judge_concurrency,
            max_retries=args.judge_max_retries,
            timeout_s=args.judge_timeout,
            cache_path=cache_dir / "judge_cache.sqlite",
        )
    )
