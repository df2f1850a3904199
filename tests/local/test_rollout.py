"""Sampling: the engine's KV-cached loop draws exactly the tokens Hugging Face's generate draws for the same seed, and
a response ends where the chat turn ends."""

import json
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from openrlhf_cfpo.chat import stop_token_ids
from openrlhf_cfpo.local.config import parse_args
from openrlhf_cfpo.local.embedded.toy_models import tiny_llama
from openrlhf_cfpo.local.rollout import decode_queries, generate, left_pad, sample
from openrlhf_cfpo.local.trainer import LocalTrainer


@pytest.mark.parametrize("temperature, top_p", [(1.0, 1.0), (0.7, 0.9), (1.3, 1.0)])
def test_sampling_draws_the_tokens_hf_generate_draws_for_the_same_seed(tiny_assets, temperature, top_p):
    tok = AutoTokenizer.from_pretrained(tiny_assets.policy)
    model = AutoModelForCausalLM.from_pretrained(tiny_assets.policy, attn_implementation="eager").eval()
    prompts = [json.loads(line)["input"] for line in open(tiny_assets.prompts)][:6]
    # prompts of different lengths, so that left padding and position ids matter
    ids, mask = left_pad([tok(p)["input_ids"][: 3 + i % 4] for i, p in enumerate(prompts * 3)], tok.pad_token_id)
    config = GenerationConfig(
        do_sample=True,
        temperature=temperature,
        top_p=top_p,
        top_k=0,
        max_new_tokens=7,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    for seed in range(3):
        torch.manual_seed(seed)
        want = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)[:, ids.shape[1] :]
        torch.manual_seed(seed)
        got = sample(model, ids, mask, 7, temperature, top_p, [tok.eos_token_id], tok.pad_token_id)
        assert torch.equal(got, want)


class ScriptedLM(torch.nn.Module):
    """Puts all probability on the next word of ``script`` at every step, in every row: sampling is deterministic."""

    def __init__(self, token_ids, vocab_size):
        super().__init__()
        self.token_ids, self.vocab_size = token_ids, vocab_size

    def forward(
        self, input_ids, attention_mask=None, position_ids=None, past_key_values=None, use_cache=True, logits_to_keep=1
    ):
        step = past_key_values or 0  # the "cache" counts the tokens generated so far
        logits = torch.full((input_ids.shape[0], 1, self.vocab_size), -1e9)
        logits[:, :, self.token_ids[step]] = 0.0
        return SimpleNamespace(logits=logits, past_key_values=step + 1)


def test_a_response_ends_at_the_end_of_the_chat_turn_when_eos_is_another_token(chatml_tokenizer):
    tok = chatml_tokenizer
    # a base model that closes its turn and then invents the next one
    script = tok.convert_tokens_to_ids(["the", "answer", "<|im_end|>", "<|im_start|>", "user", "so", "x"])
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "the answer"}], tokenize=False, add_generation_prompt=True
    )
    ids = [tok(prompt, add_special_tokens=False)["input_ids"]]
    ro = generate(ScriptedLM(script, len(tok)), tok, ids, 2, 7, 1.0, 1.0, 8, torch.device("cpu"), stop_token_ids(tok))
    assert ro.action_mask.tolist() == [[1, 1, 1]] * 2  # the turn's three tokens, nothing after <|im_end|>
    # reward_func's queries end there too (the word-level tokenizer decodes with spaces)
    assert [q.split()[-4:] for q in decode_queries(tok, ro)] == [["assistant", "the", "answer", "<|im_end|>"]] * 2


def test_the_trainer_samples_up_to_the_end_of_the_chat_turn(chatml_tokenizer, tmp_path):
    tok = chatml_tokenizer
    torch.manual_seed(0)
    tiny_llama(tok, hidden=16, layers=1, heads=2).save_pretrained(tmp_path / "policy")
    tok.save_pretrained(tmp_path / "policy")
    (tmp_path / "prompts.jsonl").write_text(
        "".join(json.dumps({"input": w}) + "\n" for w in ("the answer", "so x", "x = 4", "the 5"))
    )
    reward = tmp_path / "reward.py"
    reward.write_text(
        "import torch\ndef reward_func(queries, prompts, labels):\n    return {'rewards': torch.tensor([0.0])}\n"
    )
    trainer = LocalTrainer(
        parse_args(
            [
                "--actor.model_name_or_path",
                str(tmp_path / "policy"),
                "--data.prompt_dataset",
                str(tmp_path / "prompts.jsonl"),
                "--reward.remote_url",
                str(reward),
                "--data.apply_chat_template",
                "--rollout.batch_size",
                "4",
                "--rollout.n_samples_per_prompt",
                "4",
                "--rollout.max_new_tokens",
                "12",
                "--train.batch_size",
                "16",
                "--train.micro_batch_size",
                "16",
                "--ckpt.output_dir",
                str(tmp_path / "run"),
            ]
        ),
        log=lambda m: None,
    )
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert trainer.stop_ids == [tok.eos_token_id, im_end]
    ro = trainer.make_experience(0)
    responses = ro.sequences[:, -ro.num_actions :]
    ended = 0
    for row, mask in zip(responses, ro.action_mask):
        kept = row[mask.bool()].tolist()
        if im_end in kept:  # a turn that ended: <|im_end|> is its last token
            assert kept.index(im_end) == len(kept) - 1
            ended += 1
        else:  # a turn cut by the length limit (or ended at eos)
            assert len(kept) == ro.num_actions or kept[-1] == tok.eos_token_id
    assert ended > 0  # the random policy does close some turns, so the test has something to check
