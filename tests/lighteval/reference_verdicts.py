"""The references' own verdicts on the scoring cases (run it in .venv-lighteval: `make setup-lighteval`).

    .venv-lighteval/bin/python tests/lighteval/reference_verdicts.py IN.json OUT.json

IN.json: ``{"cases": [...], "system_prompt": str}`` with the cases of tests/scoring_cases.py. OUT.json maps each case
id to
- ``lighteval``: lighteval 0.9.2's pass@1 of the response (one sample), from the task's own prompt function and its
  first metric, applied as lighteval's pipeline applies generative metrics (``apply_generative_metric``);
- ``messages`` / ``messages_without_system``: the conversation lighteval's PromptManager builds for the case's row
  zero-shot with ``--use-chat-template``, with ``--system-prompt`` and without;
- ``open_r1`` (math tasks): the reference recipe's accuracy reward, i.e. math-verify 0.5.2 (the version its
  setup.py pins) called as its ``accuracy_reward`` calls it, with the task's gold text (MATH-500's solution,
  GSM8K's answer, AIME's answer) as the ``solution`` column. None where the gold does not parse.

lighteval 0.9.2 is the release whose metrics and task definitions equal those of the lighteval commit that the paper's
reference recipe (Zhao et al. 2025's open-r1 fork) pins, d3da6b9 (the six commits between them touch no task,
prompt or extraction code).
"""

import json
import random
import sys
from importlib.metadata import version
from unittest import mock

from lighteval.metrics import apply_generative_metric
from lighteval.models.model_output import GenerativeResponse
from lighteval.tasks import default_prompts, default_tasks
from lighteval.tasks.prompt_manager import PromptManager

VERSIONS = {"lighteval": "0.9.2", "math-verify": "0.5.2", "latex2sympy2_extended": "1.0.6"}
TASKS = {  # our benchmark name -> lighteval's task config ("lighteval|<name>|0|0")
    "math500": default_tasks.math_500,
    "gsm8k": default_tasks.gsm8k_lighteval,
    "aime24": default_tasks.aime24,
    "gpqa_diamond": default_tasks.gpqa_diamond_instruct_lighteval,
}
MATH_GOLD_COLUMN = {"math500": "solution", "gsm8k": "answer", "aime24": "answer"}


def lighteval_doc(task, case):
    """The task's own prompt function on the row; GPQA's one random draw (the correct choice's place) is the case's."""
    with mock.patch.object(default_prompts.random, "randint", lambda a, b: case["row"]["gold_index"]):
        return task.prompt_function(case["row"], task.name)


class _Recorder:
    """A model whose chat template returns the messages themselves, so the conversation can be compared."""

    max_length = None

    def __init__(self):
        self.tokenizer = self

    def apply_chat_template(self, messages, **kwargs):
        return json.dumps(messages)

    def tok_encode(self, text):
        return [0]


def lighteval_messages(task, doc, system_prompt):
    stand_in_task = mock.Mock(fewshot_selection=task.few_shots_select, fewshot_split=task.few_shots_split)
    manager = PromptManager(stand_in_task, _Recorder())
    doc = manager.add_context_to_doc(doc, num_fewshot=0, seed=1234, use_chat_template=True, system_prompt=system_prompt)
    return json.loads(doc.ctx)


def lighteval_verdict(task, doc, response):
    [scores] = apply_generative_metric(["0"], [[GenerativeResponse(result=[response])]], [doc], task.metric[:1])
    [value] = scores.values()
    return float(value)


def open_r1_reward(response, solution):
    """The reference's accuracy reward on one completion (math-verify 0.5.2, called with the reference's arguments)."""
    from latex2sympy2_extended import NormalizationConfig
    from math_verify import LatexExtractionConfig, parse, verify

    gold = parse(solution, extraction_mode="first_match")
    if len(gold) == 0:
        return None
    answer = parse(
        response,
        extraction_config=[
            LatexExtractionConfig(
                normalization_config=NormalizationConfig(
                    nits=False, malformed_operators=False, basic_latex=True, equations=True, boxed="all", units=True
                ),
                boxed_match_priority=0,
                try_extract_without_anchor=False,
            )
        ],
        extraction_mode="first_match",
    )
    try:
        return float(verify(gold, answer))
    except Exception:
        return None


def main(src, dst):
    found = {name: version(name) for name in VERSIONS}
    if found != VERSIONS:  # e.g. another environment's packages on PYTHONPATH
        sys.exit(f"the references need {VERSIONS}, this environment has {found}")
    spec = json.load(open(src, encoding="utf-8"))
    out = {}
    for case in spec["cases"]:
        task = TASKS[case["task"]]
        verdicts = {
            "lighteval": lighteval_verdict(task, lighteval_doc(task, case), case["response"]),
            "messages": lighteval_messages(task, lighteval_doc(task, case), spec["system_prompt"]),
            "messages_without_system": lighteval_messages(task, lighteval_doc(task, case), None),
        }
        if case["task"] in MATH_GOLD_COLUMN:
            verdicts["open_r1"] = open_r1_reward(case["response"], case["row"][MATH_GOLD_COLUMN[case["task"]]])
        out[case["id"]] = verdicts
    json.dump(out, open(dst, "w", encoding="utf-8"), indent=1)


if __name__ == "__main__":
    random.seed(0)
    main(*sys.argv[1:3])
