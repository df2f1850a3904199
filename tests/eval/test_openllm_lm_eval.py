"""The OpenLLM path end to end with lm-eval really running: tiny model on CPU, invented local lm-eval tasks."""

import json
import textwrap

import pytest

from openrlhf_cfpo.eval import openllm

# Invented items in the tiny tokenizer's vocabulary (no benchmark text); lm-eval reads them as a local json dataset.
ROWS = [
    {"question": "the cat sat on a", "choices": ["mat", "river", "cloud"], "label": 0, "answer": "mat"},
    {"question": "one two three", "choices": ["apple", "four", "slow"], "label": 1, "answer": "four"},
    {"question": "red and", "choices": ["blue", "stone", "why"], "label": 0, "answer": "blue"},
    {"question": "hello", "choices": ["no", "yes", "world"], "label": 2, "answer": "world"},
]
MC, GEN = "cfpo_local_mc", "cfpo_local_gen"
TASK_ARGS = ("--task", f"mc={MC}:0:acc,none", "--task", f"gen={GEN}:1:exact_match,none")


@pytest.fixture(scope="module")
def local_tasks(tmp_path_factory):
    """A multiple-choice and a generative lm-eval task over a jsonl file, in an --include-path folder."""
    root = tmp_path_factory.mktemp("lm_eval_tasks")
    data = root / "items.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    common = f"""\
        dataset_path: json
        dataset_kwargs:
          data_files:
            test: {data}
        test_split: test
        fewshot_split: test
        doc_to_text: "{{{{question}}}}"
        metadata:
          version: 1.0
        """
    (root / f"{MC}.yaml").write_text(
        textwrap.dedent(f"""\
        task: {MC}
        output_type: multiple_choice
        doc_to_choice: choices
        doc_to_target: label
        metric_list:
          - metric: acc
        """)
        + textwrap.dedent(common),
        encoding="utf-8",
    )
    # max_gen_toks 64 in the YAML: --max-new-tokens must override it.
    (root / f"{GEN}.yaml").write_text(
        textwrap.dedent(f"""\
        task: {GEN}
        output_type: generate_until
        doc_to_target: answer
        generation_kwargs:
          until: ["</s>"]
          max_gen_toks: 64
          do_sample: false
        metric_list:
          - metric: exact_match
        """)
        + textwrap.dedent(common),
        encoding="utf-8",
    )
    return root


@pytest.fixture(scope="module")
def shared_task_index():
    """Indexing lm-eval's built-in task YAMLs takes ~10 s; one real TaskManager per include path serves every run."""
    import lm_eval.tasks

    real, made = lm_eval.tasks.TaskManager, {}

    def cached(include_path=None, **kw):
        key = (str(include_path), tuple(sorted(kw.items())))
        if key not in made:
            made[key] = real(include_path=include_path, **kw)
        return made[key]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lm_eval.tasks, "TaskManager", cached)
        yield


@pytest.fixture
def local_tasks_indexed(local_tasks, shared_task_index):
    return local_tasks


def _openllm(cli, model, out, include, *extra):
    return cli(
        "openllm",
        "--model",
        model,
        "--output",
        out,
        "--include-path",
        include,
        "--backend",
        "hf",
        "--batch-size",
        2,
        "--limit",
        3,
        *TASK_ARGS,
        *extra,
    )


def _no_model(*a, **k):
    raise AssertionError("the model was loaded although no task needed it")


def test_openllm_runs_lm_eval_on_local_tasks_records_its_settings_and_resumes(
    cli, tiny_model, local_tasks_indexed, tmp_path, monkeypatch
):
    local_tasks, out = local_tasks_indexed, tmp_path / "run"
    assert _openllm(cli, tiny_model, out, local_tasks, "--max-new-tokens", 4, "--chat-template") == 0

    r = json.loads((out / "openllm" / "results.json").read_text())
    assert set(r) == {"mc", "gen", "average", "settings"}
    files = {k: out / "openllm" / "tasks" / f"{k}.json" for k in ("mc", "gen")}
    saved = {k: json.loads(f.read_text()) for k, f in files.items()}
    # scores are lm-eval's own metric as a percent, and the average is over our keys
    assert r["mc"] == pytest.approx(100 * saved["mc"]["lm_eval_results"][MC]["acc,none"])
    assert r["gen"] == pytest.approx(100 * saved["gen"]["lm_eval_results"][GEN]["exact_match,none"])
    assert all(0.0 <= r[k] <= 100.0 for k in ("mc", "gen", "average"))
    assert r["average"] == pytest.approx((r["mc"] + r["gen"]) / 2)

    s = r["settings"]
    assert s["tasks"] == {
        "mc": {"task": MC, "shots": 0, "metric": "acc,none"},
        "gen": {"task": GEN, "shots": 1, "metric": "exact_match,none"},
    }
    assert s["chat_template_applied"] is True and s["leaderboard_tasks"] is False
    assert s["limit"] == 3 and s["max_new_tokens_override"] == 4 and s["include_path"] == str(local_tasks)
    # lm-eval itself generated with the override, not the YAML's 64; the loglikelihood task has no generation
    assert saved["gen"]["generation_kwargs"][GEN]["max_gen_toks"] == 4 and saved["mc"]["generation_kwargs"] == {}
    assert saved["gen"]["shots"] == 1 and saved["mc"]["chat_template"] is True

    # Same settings again: both scores come from disk, the files are untouched and the model is never loaded.
    stamps = {k: f.stat().st_mtime_ns for k, f in files.items()}
    real_make_lm = openllm.make_lm
    monkeypatch.setattr(openllm, "make_lm", _no_model)
    assert _openllm(cli, tiny_model, out, local_tasks, "--max-new-tokens", 4, "--chat-template") == 0
    again = json.loads((out / "openllm" / "results.json").read_text())
    assert {k: again[k] for k in ("mc", "gen", "average")} == {k: r[k] for k in ("mc", "gen", "average")}
    assert stamps == {k: f.stat().st_mtime_ns for k, f in files.items()}

    # Another generation cap: only the generative task is recomputed, the multiple-choice score is kept.
    loads = []
    monkeypatch.setattr(openllm, "make_lm", lambda *a: loads.append(a) or real_make_lm(*a))
    assert _openllm(cli, tiny_model, out, local_tasks, "--max-new-tokens", 8, "--chat-template") == 0
    assert len(loads) == 1
    assert files["mc"].stat().st_mtime_ns == stamps["mc"] and files["gen"].stat().st_mtime_ns != stamps["gen"]
    assert json.loads(files["gen"].read_text())["generation_kwargs"][GEN]["max_gen_toks"] == 8


def test_openllm_rejects_an_unknown_task_before_loading_the_model(
    cli, tiny_model, local_tasks_indexed, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(openllm, "make_lm", _no_model)
    rc = cli(
        "openllm",
        "--model",
        tiny_model,
        "--output",
        tmp_path / "run",
        "--include-path",
        local_tasks_indexed,
        "--task",
        "x=cfpo_no_such_task:0:acc,none",
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "no task 'cfpo_no_such_task'" in err[0]


def test_openllm_task_option_rejects_a_malformed_spec_with_one_error_line(cli, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli("openllm", "--model", "m", "--output", tmp_path, "--task", "arc=arc_challenge:many:acc,none")
    assert e.value.code == 2
    assert "expected KEY=TASK:SHOTS:METRIC" in capsys.readouterr().err.strip().splitlines()[-1]


def test_openllm_runs_through_lm_evals_vllm_class_on_cpu_and_scores_as_its_hugging_face_class(
    vllm_cpu, cli, smollm2, local_tasks_indexed, tmp_path, monkeypatch
):
    made, runs = [], {}
    real_make_lm = openllm.make_lm
    monkeypatch.setattr(openllm, "make_lm", lambda *a: made.append(real_make_lm(*a)) or made[-1])
    for backend in ("vllm", "hf"):
        out = tmp_path / backend
        assert (
            cli(
                "openllm",
                "--model",
                smollm2,
                "--output",
                out,
                "--include-path",
                local_tasks_indexed,
                "--backend",
                backend,
                "--dtype",
                "float32",
                "--batch-size",
                2,
                "--limit",
                2,
                "--max-new-tokens",
                4,
                *TASK_ARGS,
            )
            == 0
        )
        runs[backend] = json.loads((out / "openllm" / "results.json").read_text())
    vllm_lm, _ = made
    from lm_eval.models.vllm_causallms import VLLM

    assert isinstance(vllm_lm, VLLM)
    config = vllm_lm.model.llm_engine.vllm_config
    assert config.device_config.device_type == "cpu" and config.model_config.enforce_eager is True
    assert config.cache_config.kv_cache_memory_bytes == 1 << 30  # VLLM_CPU_KVCACHE_SPACE=1 from tests/conftest.py
    settings = runs["vllm"]["settings"]
    assert settings["backend"] == "vllm" and settings["vllm_engine"] == {
        "device": "cpu",
        "enforce_eager": True,
        "kv_cache_gib": 1,
        "kv_cache_from": "VLLM_CPU_KVCACHE_SPACE",
        "in_process": True,
    }
    assert runs["hf"]["settings"]["backend"] == "hf" and "vllm_engine" not in runs["hf"]["settings"]
    # The same fp32 model and prompts: the log-likelihood and the greedy generative task score alike on both classes.
    assert {k: runs["vllm"][k] for k in ("mc", "gen")} == {k: runs["hf"][k] for k in ("mc", "gen")}
    made.clear()
