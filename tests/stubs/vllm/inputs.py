"""Stand-in for `vllm.inputs`."""
from typing import List, TypedDict


class TokensPrompt(TypedDict, total=False):
    prompt_token_ids: List[int]
    multi_modal_data: dict
