"""Verifiable rewards through OpenRLHF's reward_func interface (--reward.remote_url FILE.py, --data.label_key)."""

import json

import pytest
import torch

from openrlhf_cfpo.local.cli import main_local
from openrlhf_cfpo.local.config import parse_args
from openrlhf_cfpo.local.embedded.arithmetic_reward import parse_answer, reward_func
from openrlhf_cfpo.local.logger import read_metrics
from openrlhf_cfpo.local.trainer import LocalTrainer

# A reward file as a user writes it for OpenRLHF: it records what it is called with, and pays 1 for answers
# that start with the label's first digit.
RECORDING_REWARD = """
import json, os, torch

def reward_func(queries, prompts, labels):
    with open(os.environ["REWARD_CALLS"], "a") as f:
        f.write(json.dumps({"queries": queries, "prompts": prompts, "labels": labels}) + "\\n")
    answer = queries[0].rsplit("=", 1)[1].split()
    r = torch.tensor([float(bool(answer) and answer[0] == labels[0][0])])
    return {"rewards": r, "scores": 1 - r, "extra_logs": {"query_chars": torch.tensor([len(queries[0])])}}
"""


def test_the_arithmetic_reward_reads_the_answer_after_the_last_equals_sign_up_to_eos():
    assert parse_answer("<s> 4 7 + 3 8 = 8 5 </s>") == "85"
    assert parse_answer("<s> 4 7 + 3 8 = 8 5 </s> <pad> <pad>") == "85"
    assert parse_answer("<s> 4 7 + 3 8 = 8 5") is None  # truncated: no answer
    assert parse_answer("<s> 4 7 + 3 8 = 8 + </s>") is None
    assert parse_answer("4 7 + 3 8 = 85<|im_end|>") == "85"  # a Qwen-style vocabulary writes digits together
    out = reward_func(
        ["<s> 1 + 2 = 3 </s>", "<s> 1 + 2 = 4 </s>", "<s> 1 + 2 = </s>"], ["1 + 2 ="] * 3, ["3", "3", "3"]
    )
    assert out["rewards"].tolist() == [1.0, 0.0, 0.0] and out["scores"].tolist() == [1.0, 0.0, 0.0]
    assert out["extra_logs"]["answer_well_formed"].tolist() == [1.0, 1.0, 0.0]


def test_reward_func_is_called_per_sample_with_openrlhfs_queries_prompts_and_labels(
    arithmetic_flags, tiny_arithmetic, tmp_path, monkeypatch
):
    reward_file = tmp_path / "my_reward.py"
    reward_file.write_text(RECORDING_REWARD)
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv("REWARD_CALLS", str(calls))
    flags = [*arithmetic_flags, "--reward.remote_url", str(reward_file), "--ckpt.output_dir", str(tmp_path / "run")]
    trainer = LocalTrainer(parse_args(flags), log=lambda m: None)
    assert trainer.reward_model is None  # no reward model is loaded for a reward file
    trainer.fit()
    rows = [json.loads(line) for line in calls.read_text().splitlines()]
    assert len(rows) == 3 * 4 * 2  # 3 rollouts x 4 prompts x 2 samples, one call each, as OpenRLHF calls it
    label_of = {json.loads(line)["input"]: json.loads(line)["label"] for line in open(tiny_arithmetic.prompts)}
    for r in rows:
        (query,), (prompt,), (label,) = r["queries"], r["prompts"], r["labels"]
        assert label == label_of[prompt]  # labels: the dataset's --data.label_key field of that prompt
        # queries: prompt and response decoded together, special tokens kept (BOS, and the EOS when generated),
        # nothing after the EOS and no padding: at most --rollout.max_new_tokens response tokens
        response = query[len("<s> " + prompt) :].split()
        assert query.startswith("<s> " + prompt + " ") and 1 <= len(response) <= 5
        assert "</s>" not in response[:-1]
    metrics = read_metrics(str(tmp_path / "run" / "metrics.jsonl"))
    # rewards train and are logged as reward; scores are logged as score; extra_logs under their own names
    assert all(m["score"] == pytest.approx(1 - m["reward"]) for m in metrics)
    assert all(m["query_chars"] > len("<s> 1 + 1 =") for m in metrics)


def test_the_embedded_arithmetic_default_trains_with_its_own_reward_file(arithmetic_flags, tiny_arithmetic, tmp_path):
    out = tmp_path / "run"
    assert main_local([*arithmetic_flags, "--ckpt.output_dir", str(out), "--train.max_epochs", "2"]) == 0
    rows = read_metrics(str(out / "metrics.jsonl"))
    assert len(rows) == 12 and {"reward", "score", "answer_well_formed", "entropy", "ppo_clip_ratio"} <= rows[0].keys()
    assert all(0.0 <= r["reward"] <= 1.0 and r["score"] == r["reward"] for r in rows)
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["paths"]["reward"] is None and summary["paths"]["reward_func"].endswith("arithmetic_reward.py")


def _one_error_line(argv, capsys, out):
    code = main_local([*argv, "--ckpt.output_dir", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("openrlhf-cfpo local: error: "), err
    assert not out.exists()  # nothing trained, nothing written
    return err[0]


def test_a_reward_file_without_reward_func_is_refused_before_any_model_loads(
    arithmetic_flags, tmp_path, capsys, monkeypatch
):
    bad = tmp_path / "reward.py"
    bad.write_text("def score(queries, prompts, labels):\n    return {}\n")
    import openrlhf_cfpo.local.trainer as trainer

    monkeypatch.setattr(trainer.LocalTrainer, "__init__", lambda *a, **k: pytest.fail("got past the flag checks"))
    line = _one_error_line([*arithmetic_flags, "--reward.remote_url", str(bad)], capsys, tmp_path / "run")
    assert "defines no reward_func" in line and "score" in line


def test_a_dataset_without_the_label_key_is_refused_before_any_model_loads(
    arithmetic_flags, tmp_path, capsys, monkeypatch
):
    import openrlhf_cfpo.local.trainer as trainer

    monkeypatch.setattr(
        trainer.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: pytest.fail("a model was loaded")
    )
    line = _one_error_line([*arithmetic_flags, "--data.label_key", "answer"], capsys, tmp_path / "run")
    assert "no label field 'answer'" in line and "--data.label_key" in line


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--reward.remote_url", "http://localhost:5000/get_reward"], "needs OpenRLHF itself"),
        (["--reward.model_name_or_path", "__RM__"], "not both"),
        (["--reward.remote_url", "missing_reward.py"], "no such file"),
    ],
)
def test_reward_flags_that_cannot_work_are_one_line(arithmetic_flags, tiny_assets, tmp_path, capsys, extra, words):
    extra = [tiny_assets.reward if x == "__RM__" else x for x in extra]
    assert words in _one_error_line([*arithmetic_flags, *extra], capsys, tmp_path / "run")


def test_a_reward_func_that_breaks_the_interface_stops_with_one_line(arithmetic_flags, tmp_path, capsys):
    bad = tmp_path / "reward.py"
    bad.write_text("import torch\ndef reward_func(queries, prompts, labels):\n    return {'rewards': torch.zeros(3)}\n")
    code = main_local([*arithmetic_flags, "--reward.remote_url", str(bad), "--ckpt.output_dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and "returned 3 rewards for one query" in err[-1]


def test_reward_model_scores_are_unchanged_by_vectorised_repacking(tiny_assets):
    from transformers import AutoModelForSequenceClassification

    from openrlhf_cfpo.local.rollout import Rollout, reward_scores

    rm = AutoModelForSequenceClassification.from_pretrained(tiny_assets.reward).eval()
    seq = torch.tensor(
        [[0, 0, 2, 4, 5, 6, 10, 11, 3, 0], [2, 4, 5, 6, 7, 10, 20, 21, 22, 3], [0, 2, 4, 5, 6, 10, 3, 0, 0, 0]]
    )
    attn = (seq != 0).long()
    ro = Rollout(sequences=seq, attention_mask=attn, action_mask=attn[:, -4:])
    got = reward_scores(rm, ro, 0, 2, torch.device("cpu"))
    # the reference: each sequence alone, its tokens at positions 0..n-1
    want = [rm(input_ids=s[m.bool()][None]).logits[0, 0].item() for s, m in zip(seq, attn)]
    assert got.tolist() == pytest.approx(want, abs=1e-5)


def test_a_reward_func_that_reads_labels_without_a_label_key_is_refused_before_any_model_loads(
    arithmetic_flags, tmp_path, capsys, monkeypatch
):
    import openrlhf_cfpo.local.trainer as trainer

    reward_file = tmp_path / "my_reward.py"
    reward_file.write_text(RECORDING_REWARD)
    flags = list(arithmetic_flags)
    del flags[flags.index("--data.label_key") : flags.index("--data.label_key") + 2]
    monkeypatch.setattr(
        trainer.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: pytest.fail("a model was loaded")
    )
    line = _one_error_line([*flags, "--reward.remote_url", str(reward_file)], capsys, tmp_path / "run")
    assert "reward_func reads its labels, but no --data.label_key is given" in line
    assert "set --data.label_key" in line and "fields: input, label" in line


def test_a_reward_func_that_ignores_its_labels_needs_no_label_key():
    from openrlhf_cfpo.local.rewards import reads_labels

    def by_length(queries, prompts, labels):
        return {"rewards": torch.tensor([float(len(q)) for q in queries])}

    def by_label(queries, prompts, labels):
        return {"rewards": torch.tensor([float(q.endswith(y)) for q, y in zip(queries, labels)])}

    def by_label_inside(queries, prompts, labels):
        return {"rewards": torch.tensor([float(labels[i] in q) for i, q in enumerate(queries)])}

    def anything(*args):
        return {"rewards": torch.zeros(1)}

    assert not reads_labels(by_length)
    assert reads_labels(by_label) and reads_labels(by_label_inside) and reads_labels(anything)
    assert reads_labels(reward_func)  # the arithmetic default's


def test_extra_logs_with_several_values_for_one_query_stop_the_run_in_one_line(arithmetic_flags, tmp_path, capsys):
    bad = tmp_path / "reward.py"
    bad.write_text(
        "import torch\ndef reward_func(queries, prompts, labels):\n"
        "    return {'rewards': torch.ones(1), 'extra_logs': {'lengths': torch.tensor([1.0, 2.0])}}\n"
    )
    code = main_local([*arithmetic_flags, "--reward.remote_url", str(bad), "--ckpt.output_dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].endswith(
        "reward_func returned 2 values for extra_logs['lengths'] for one query "
        "(OpenRLHF calls it with one sample at a time and reads one value)"
    )
