"""Models and datasets by hub name (never fetched here: the hub is offline in every test) and bf16."""

import json
import shutil

import pytest
import torch

from openrlhf_cfpo.local.cli import main_local
from openrlhf_cfpo.local.config import ConfigError, parse_args
from openrlhf_cfpo.local.hub import is_hub_name, resolve_model
from openrlhf_cfpo.local.logger import read_metrics
from openrlhf_cfpo.local.trainer import LocalTrainer


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """An empty Hugging Face cache with downloads forbidden, as on a machine with HF_HUB_OFFLINE=1."""
    from huggingface_hub import constants

    cache = tmp_path / "hf_cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def _cache_as_hub_model(cache, repo_id, folder):
    """Lay ``folder`` out as the hub cache holds a downloaded snapshot of ``repo_id``."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return repo / "snapshots" / commit


def test_hub_names_and_paths_are_told_apart():
    assert is_hub_name("Qwen/Qwen2.5-0.5B-Instruct") and is_hub_name("gpt2")
    assert not is_hub_name("./runs/model") and not is_hub_name("/abs/model") and not is_hub_name("a/b/c")


def test_a_hub_model_that_is_not_cached_offline_is_one_line_before_training(local_flags, offline_hub, tmp_path, capsys):
    out = tmp_path / "run"
    code = main_local(
        [*local_flags, "--actor.model_name_or_path", "Qwen/Qwen2.5-0.5B-Instruct", "--ckpt.output_dir", str(out)]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    line = err[0]
    assert line.startswith("openrlhf-cfpo local: error: --actor.model_name_or_path Qwen/Qwen2.5-0.5B-Instruct")
    assert "HF_HUB_OFFLINE=1" in line and "hf download Qwen/Qwen2.5-0.5B-Instruct" in line and "local" in line
    assert not out.exists()


def test_a_hub_dataset_that_is_not_cached_offline_is_one_line(local_flags, offline_hub, tmp_path, capsys):
    code = main_local(
        [
            *local_flags,
            "--data.prompt_dataset",
            "OpenRLHF/prompt-collection-v0.1",
            "--ckpt.output_dir",
            str(tmp_path / "r"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "hf download --repo-type dataset OpenRLHF/prompt-collection-v0.1" in err[0]


def test_a_cached_hub_model_trains_offline_and_a_local_folder_is_taken_as_is(
    local_flags, tiny_assets, offline_hub, tmp_path
):
    snapshot = _cache_as_hub_model(offline_hub, "tiny-org/tiny-policy", tiny_assets.policy)
    assert resolve_model("actor.model_name_or_path", tiny_assets.policy) == tiny_assets.policy
    assert resolve_model("actor.model_name_or_path", "tiny-org/tiny-policy") == str(snapshot)
    out = tmp_path / "run"
    assert (
        main_local([*local_flags, "--actor.model_name_or_path", "tiny-org/tiny-policy", "--ckpt.output_dir", str(out)])
        == 0
    )
    assert json.loads((out / "run_summary.json").read_text())["paths"]["policy"] == str(snapshot)


def test_param_dtype_takes_openrlhfs_flag_name(local_flags, tmp_path):
    assert parse_args([*local_flags, "--ckpt.output_dir", str(tmp_path)]).args.ds.param_dtype == "fp32"
    assert (
        parse_args([*local_flags, "--ds.param_dtype", "bf16", "--ckpt.output_dir", str(tmp_path)]).args.ds.param_dtype
        == "bf16"
    )
    with pytest.raises(ConfigError, match="invalid choice: 'fp16'"):
        parse_args([*local_flags, "--ds.param_dtype", "fp16", "--ckpt.output_dir", str(tmp_path)])


def test_bf16_trains_on_cpu_with_fp32_master_weights_and_bf16_frozen_models(local_flags, tmp_path):
    # The decision: bf16 is not refused on a CPU; it runs the GPU's code path (autocast), so a laptop tests it.
    t = LocalTrainer(
        parse_args([*local_flags, "--ds.param_dtype", "bf16", "--ckpt.output_dir", str(tmp_path / "run")]),
        log=lambda m: None,
    )
    assert next(t.policy.parameters()).dtype == torch.float32
    assert (
        next(t.ref.parameters()).dtype == torch.bfloat16 and next(t.reward_model.parameters()).dtype == torch.bfloat16
    )
    t.fit()
    rows = read_metrics(str(tmp_path / "run" / "metrics.jsonl"))
    assert len(rows) == 6 and all(
        torch.isfinite(torch.tensor([r["policy_loss"], r["entropy"], r["reward"]])).all() for r in rows
    )
