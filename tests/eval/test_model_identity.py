"""Eval answers belong to the model that produced them: a run folder knows its model by what it is, not its spelling."""

import json
import shutil

import pytest

from openrlhf_cfpo.eval import model as model_id

ONE = ("--limit", 1, "--max-new-tokens", 2)


@pytest.fixture
def in_tmp(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _no_model(*a, **k):
    raise AssertionError("the model was loaded although every answer was on disk")


def test_another_checkpoint_saved_to_the_same_path_is_refused_with_one_line(
    cli, make_tiny_model, fixture_data, in_tmp, capsys
):
    make_tiny_model(in_tmp / "ckpt", seed=0)
    assert cli("ifeval", "--model", "ckpt", "--output", "run", "--data-dir", fixture_data, *ONE) == 0
    shutil.rmtree(in_tmp / "ckpt")
    make_tiny_model(in_tmp / "ckpt", seed=1)  # the next training step, saved where the first one was
    capsys.readouterr()
    assert cli("ifeval", "--model", "ckpt", "--output", "run", "--data-dir", fixture_data, *ONE) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds answers of the model folder" in err and "--output" in err


def test_another_model_folder_is_refused(cli, make_tiny_model, fixture_data, in_tmp, capsys):
    a, b = make_tiny_model(in_tmp / "a", seed=0), make_tiny_model(in_tmp / "b", seed=1)
    assert cli("ifeval", "--model", a, "--output", "run", "--data-dir", fixture_data, *ONE) == 0
    assert cli("ifeval", "--model", b, "--output", "run", "--data-dir", fixture_data, *ONE) == 2
    assert "holds answers of" in capsys.readouterr().err


@pytest.mark.parametrize("spelling", ["./tiny/", "tiny", "ABSOLUTE", "copy"])
def test_the_same_model_spelled_or_copied_otherwise_resumes_without_generating(
    spelling, cli, make_tiny_model, fixture_data, in_tmp, monkeypatch
):
    make_tiny_model(in_tmp / "tiny", seed=0)
    assert cli("ifeval", "--model", "tiny", "--output", "run", "--data-dir", fixture_data, *ONE) == 0
    shutil.copytree(in_tmp / "tiny", in_tmp / "copy")
    monkeypatch.setattr("openrlhf_cfpo.eval.common.make_backend", _no_model)
    given = str(in_tmp / "tiny") if spelling == "ABSOLUTE" else spelling
    assert cli("ifeval", "--model", given, "--output", "run", "--data-dir", fixture_data, *ONE) == 0


def test_results_record_the_models_identity(cli, tiny_model, fixture_data, tmp_path):
    assert (
        cli("ifeval", "--model", tiny_model + "/", "--output", tmp_path / "run", "--data-dir", fixture_data, *ONE) == 0
    )
    identity = json.loads((tmp_path / "run/ifeval/results.json").read_text())["settings"]["model_identity"]
    assert identity == {"path": tiny_model, "fingerprint": model_id.fingerprint(model_id.Path(tiny_model))}


def _fake_hub_cache(root, repo, commit):
    snap = root / f"models--{repo.replace('/', '--')}" / "snapshots" / commit
    snap.mkdir(parents=True, exist_ok=True)
    (snap / "config.json").write_text("{}")
    (root / f"models--{repo.replace('/', '--')}" / "refs").mkdir(exist_ok=True)
    (root / f"models--{repo.replace('/', '--')}" / "refs" / "main").write_text(commit)


def test_a_hub_name_is_the_revision_it_resolves_to_and_that_revision_is_loaded(
    cli, fixture_data, tmp_path, monkeypatch, capsys
):
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    first, second = "a" * 40, "b" * 40
    _fake_hub_cache(cache, "org/chat", first)
    loaded = []

    class Echo:
        name = "echo"

        def generate(self, convs, decoding):
            return ["fine" for _ in convs]

    monkeypatch.setattr(
        "openrlhf_cfpo.eval.common.make_backend", lambda model, *a, **k: loaded.append((model, k)) or Echo()
    )
    assert cli("ifeval", "--model", "org/chat", "--output", tmp_path / "run", "--data-dir", fixture_data, *ONE) == 0
    assert loaded == [("org/chat", {"revision": first, "tensor_parallel_size": 1})]
    settings = json.loads((tmp_path / "run/ifeval/results.json").read_text())["settings"]
    assert settings["model_identity"] == {"hub": "org/chat", "revision": first}

    _fake_hub_cache(cache, "org/chat", second)  # the hub name moved on to a new commit
    capsys.readouterr()
    assert cli("ifeval", "--model", "org/chat", "--output", tmp_path / "run", "--data-dir", fixture_data, *ONE) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"org/chat at revision {first[:12]}" in err


def test_the_fingerprint_sees_a_change_deep_inside_a_large_weights_file(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    weights = bytearray(range(256)) * (64 * 1024)  # 16 MiB
    (folder / "model.safetensors").write_bytes(weights)
    before = model_id.fingerprint(folder)
    # One 1 MiB stretch in the middle changes, as when training updates a single matrix of a layer.
    weights[8 << 20 : 9 << 20] = bytes(1 << 20)
    (folder / "model.safetensors").write_bytes(weights)
    assert model_id.fingerprint(folder) != before
