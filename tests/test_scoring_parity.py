"""Our reasoning scoring against the paper's references' own code, response by response, on tests/scoring_cases.py.

The references run in .venv-lighteval (tests/lighteval/reference_verdicts.py), since lighteval's pins clash with ours:
- eval: lighteval 0.9.2's own prompt functions and metrics (the release equal to the commit the paper's reference
  recipe pins) give the verdict of every response and the conversation of every row;
- reward: the reference recipe's accuracy reward, math-verify 0.5.2 called with its arguments (the recipe's own
  function, run once on this set with stand-ins for its unrelated imports, gave the same 311 rewards; its source is on
  no package registry, so it cannot run here);
our side runs in this environment through the benchmark loaders, metrics and reward the runs use. Where the reward and
the eval disagree, the last test names which difference between the two references explains it.
"""

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

from openrlhf_cfpo.eval import answer_check, reasoning
from openrlhf_cfpo.eval.answer_check import METRICS
from openrlhf_cfpo.reasoning import rewards, verifier

ROOT = Path(__file__).resolve().parent.parent
LIGHTEVAL_PYTHON = ROOT / ".venv-lighteval" / "bin" / "python"
SYSTEM_PROMPT = reasoning.SYSTEM_PROMPTS["paper-3b"]
TASKS = tuple(reasoning.BENCHMARKS)
MATH_TASKS = ("math500", "gsm8k", "aime24")  # the reward's domain; GPQA is scored by letter only


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
        pytest.skip(f"needs the lighteval references: no {LIGHTEVAL_PYTHON} here (`make setup-lighteval` builds it)")
    folder = tmp_path_factory.mktemp("references")
    (folder / "in.json").write_text(json.dumps({"cases": CASES, "system_prompt": SYSTEM_PROMPT}), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing of this environment in the references'
    proc = subprocess.run(
        [
            str(LIGHTEVAL_PYTHON),
            str(ROOT / "tests" / "lighteval" / "reference_verdicts.py"),
            str(folder / "in.json"),
            str(folder / "out.json"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
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
    ours = {c["id"]: our_eval_verdict(c, monkeypatch) for c in cases}
    differ = [
        (c["response"], ours[c["id"]], reference[c["id"]]["lighteval"])
        for c in cases
        if ours[c["id"]] != reference[c["id"]]["lighteval"]
    ]
    assert not differ, f"{len(differ)} of {len(cases)} (response, ours, lighteval's) differ: {differ}"


@pytest.mark.parametrize("with_system_prompt", [True, False], ids=["system-prompt", "no-system-prompt"])
@pytest.mark.parametrize("task", TASKS)
def test_every_conversation_is_the_one_lighteval_builds_with_the_chat_template(
    task, with_system_prompt, reference, monkeypatch
):
    bench = reasoning.BENCHMARKS[task]
    system = SYSTEM_PROMPT if with_system_prompt else None
    for case in [c for c in CASES if c["task"] == task]:
        system_turn, user_turns = reasoning.conversation(bench, our_problem(case, monkeypatch), system)
        ours = ([{"role": "system", "content": system_turn}] if system_turn is not None else []) + [
            {"role": "user", "content": turn} for turn in user_turns
        ]
        assert ours == reference[case["id"]]["messages" if with_system_prompt else "messages_without_system"]


@pytest.mark.parametrize("task", MATH_TASKS)
def test_every_reward_is_the_reference_recipes_own(task, reference, monkeypatch):
    cases = [c for c in CASES if c["task"] == task]
    # the reference's solution column: the gold text the eval reads too (MATH-500's solution, GSM8K's, AIME's answer)
    ours = {c["id"]: rewards.score(c["response"], our_problem(c, monkeypatch).gold) for c in cases}
    differ = [
        (c["response"], ours[c["id"]], reference[c["id"]]["open_r1"])
        for c in cases
        if ours[c["id"]] != reference[c["id"]]["open_r1"]
    ]
    assert not differ, f"{len(differ)} of {len(cases)} (response, ours, the reference's) differ: {differ}"
    assert {1.0, 0.0} <= set(ours.values())


def why_reward_and_eval_differ(task: str, response: str, gold_text: str) -> list[str]:
    """Which differences between the reference recipe's reward and lighteval's metric explain a disagreement."""
    reasons = []
    read_by_reward = [x for x in rewards.read_answer(response) if not isinstance(x, str)]
    if not read_by_reward:
        # the reward reads LaTeX only, boxed or after "final answer ... is" / "answer", normalized without repairs
        reasons.append("the reward reads no answer")
    if task != "gsm8k":
        gold, predicted = answer_check.read_math(gold_text), answer_check.read_math(response)
        as_lighteval = verifier.verify(predicted, gold, float_rounding=answer_check.DOC_AS_PRECISION)
        if verifier.verify(predicted, gold) != as_lighteval:
            reasons.append("lighteval's precision bug")
        if verifier.verify(gold, predicted, float_rounding=answer_check.DOC_AS_PRECISION) != as_lighteval:
            reasons.append("lighteval's swapped arguments")
        if read_by_reward and predicted and str(read_by_reward[0]) != str(predicted[0]):
            reasons.append("another answer read")  # the reward tries a box first, lighteval "final answer is $x$"
    return reasons


def test_reward_and_eval_agree_except_where_their_references_differ(monkeypatch):
    cases = [c for c in CASES if c["task"] in MATH_TASKS]
    by_reason, unexplained, n_differ = {}, [], 0
    for case in cases:
        problem = our_problem(case, monkeypatch)
        evaluated, rewarded = our_eval_verdict(case, monkeypatch), rewards.score(case["response"], problem.gold)
        if rewarded == evaluated:
            continue
        n_differ += 1
        reasons = why_reward_and_eval_differ(case["task"], case["response"], problem.gold)
        if not reasons:
            unexplained.append((case["task"], case["response"], rewarded, evaluated))
        for reason in reasons:
            by_reason[reason] = by_reason.get(reason, 0) + 1
    assert not unexplained, f"reward and eval differ for no stated reason: {unexplained}"
    print(f"reward and eval agree on {len(cases) - n_differ} of {len(cases)}; where they differ: {by_reason}")
