"""Our reasoning scoring against the paper's references' own code, response by response, on tests/scoring_cases.py.

The references run in .venv-lighteval (tests/lighteval/reference_verdicts.py), since lighteval's pins clash with ours:
- eval: lighteval 0.9.2's own prompt functions and metrics (the release equal to the commit the paper's reference
  recipe pins) give the verdict of every response and the conversation of every row;
our side runs in this environment through the benchmark loaders and metrics the eval commands use.
"""
import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

from openrlhf_cfpo.eval import reasoning
from openrlhf_cfpo.eval.answer_check import METRICS

ROOT = Path(__file__).resolve().parent.parent
LIGHTEVAL_PYTHON = ROOT / ".venv-lighteval" / "bin" / "python"
SYSTEM_PROMPT = reasoning.SYSTEM_PROMPTS["paper-3b"]
TASKS = tuple(reasoning.BENCHMARKS)


def _cases() -> list[dict]:
    spec = importlib.util.spec_from_file_location("scoring_cases", ROOT / "tests" / "scoring_cases.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.cases()


CASES = _cases()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The references' verdicts and conversations for every case, computed once in .venv-lighteval."""
    if not LIGHTEVAL_PYTHON.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{LIGHTEVAL_PYTHON} is missing: `make test` builds it before running the tests")
        pytest.skip("no .venv-lighteval here (`make setup-lighteval` builds it)")
    folder = tmp_path_factory.mktemp("references")
    (folder / "in.json").write_text(json.dumps({"cases": CASES, "system_prompt": SYSTEM_PROMPT}), encoding="utf-8")
    proc = subprocess.run([str(LIGHTEVAL_PYTHON), str(ROOT / "tests" / "lighteval" / "reference_verdicts.py"),
                           str(folder / "in.json"), str(folder / "out.json")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((folder / "out.json").read_text(encoding="utf-8"))


def our_problem(case: dict, monkeypatch) -> reasoning.Problem:
    """The case's row through the benchmark's own loader; GPQA's correct choice where the case puts it."""
    if case["task"] == "gpqa_diamond":
        monkeypatch.setattr(reasoning, "gold_position", lambda key: case["row"]["gold_index"])
    [problem] = reasoning.BENCHMARKS[case["task"]].load([case["row"]])
    return problem


def our_eval_verdict(case: dict, monkeypatch) -> float:
    problem = our_problem(case, monkeypatch)
    metric = METRICS[reasoning.BENCHMARKS[case["task"]].kind]
    _, correct = metric.check(case["response"], metric.read_gold(problem.gold))
    return float(correct)


def test_the_fixed_set_has_right_wrong_and_unreadable_responses_for_every_task(reference):
    for task in TASKS:
        verdicts = [reference[c["id"]]["lighteval"] for c in CASES if c["task"] == task]
        assert len(verdicts) >= 40 and 0.15 < sum(verdicts) / len(verdicts) < 0.85, task
    assert len(CASES) >= 200


@pytest.mark.parametrize("task", TASKS)
def test_every_eval_verdict_is_lighteval_0_9_2s_own(task, reference, monkeypatch):
    cases = [c for c in CASES if c["task"] == task]
    differ = [(c["response"], our_eval_verdict(c, monkeypatch), reference[c["id"]]["lighteval"]) for c in cases
              if our_eval_verdict(c, monkeypatch) != reference[c["id"]]["lighteval"]]
    assert not differ, f"{len(differ)} of {len(cases)} (response, ours, lighteval's) differ: {differ}"


@pytest.mark.parametrize("with_system_prompt", [True, False], ids=["system-prompt", "no-system-prompt"])
@pytest.mark.parametrize("task", TASKS)
def test_every_conversation_is_the_one_lighteval_builds_with_the_chat_template(task, with_system_prompt, reference,
                                                                               monkeypatch):
    bench = reasoning.BENCHMARKS[task]
    system = SYSTEM_PROMPT if with_system_prompt else None
    for case in [c for c in CASES if c["task"] == task]:
        system_turn, user_turns = reasoning.conversation(bench, our_problem(case, monkeypatch), system)
        ours = ([{"role": "system", "content": system_turn}] if system_turn is not None else []) + \
            [{"role": "user", "content": turn} for turn in user_turns]
        assert ours == reference[case["id"]]["messages" if with_system_prompt else "messages_without_system"]
