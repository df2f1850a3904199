"""End of a chat turn, read off the template: the stop ids every generator of the package uses."""

import importlib.util
import os

from transformers import GenerationConfig

from openrlhf_cfpo.chat import end_of_turn_token_id, stop_token_ids

_spec = importlib.util.spec_from_file_location(
    "offline_math", os.path.join(os.path.dirname(__file__), "reasoning", "offline_math.py")
)
offline_math = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(offline_math)


def chatml_tokenizer_with_base_eos():
    """ChatML turns (closed by <|im_end|>) but an eos of its own, as Qwen2.5 base models have."""
    tok = offline_math.build_chat_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|endoftext|>"]})
    tok.eos_token = "<|endoftext|>"
    return tok


def test_the_end_of_a_chatml_turn_is_im_end_even_when_eos_is_another_token():
    tok = chatml_tokenizer_with_base_eos()
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.eos_token_id != im_end
    assert end_of_turn_token_id(tok) == im_end
    assert stop_token_ids(tok) == [tok.eos_token_id, im_end]


def test_stop_ids_include_the_generation_configs_eos_once():
    tok = chatml_tokenizer_with_base_eos()
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    config = GenerationConfig(eos_token_id=[im_end, 1])
    assert stop_token_ids(tok, config) == [tok.eos_token_id, im_end, 1]


def test_a_tokenizer_without_a_chat_template_stops_at_eos_only():
    tok = chatml_tokenizer_with_base_eos()
    tok.chat_template = None
    assert end_of_turn_token_id(tok) is None
    assert stop_token_ids(tok) == [tok.eos_token_id]


def test_text_after_the_turn_that_is_no_special_token_is_not_a_stop():
    tok = chatml_tokenizer_with_base_eos()
    tok.chat_template = "{% for m in messages %}{{ m['content'] }} the {% endfor %}"
    assert end_of_turn_token_id(tok) is None
