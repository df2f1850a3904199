"""SmolLM2-135M-Instruct, a real pretrained chat model, through every path that renders, samples, stops and scores.

The toy models of the other tests cannot show what a real chat model does with our chat template, stop tokens and
answer extraction. Here the same arithmetic questions (a worked example, then the question: the embedded
smollm2_arithmetic default's prompts) go through the local engine's sampler, the OpenRLHF reward file, the eval's HF
backend and answer check, and the TRL recipe's prompt tokenization; each pair must agree on the same text.
"""

import json

import pytest
import torch

from openrlhf_cfpo.chat import stop_token_ids
from openrlhf_cfpo.eval import answer_check
from openrlhf_cfpo.eval.decoding import Decoding
from openrlhf_cfpo.eval.generation import HFBackend, prompt_token_ids, render
from openrlhf_cfpo.local.embedded.smollm2_arithmetic import MAX_NEW_TOKENS, REWARD_FILE, question
from openrlhf_cfpo.local.rewards import RewardFunction
from openrlhf_cfpo.local.rollout import decode_queries, encode_prompts, format_prompts, generate
from openrlhf_cfpo.reasoning import data as reasoning_data
from openrlhf_cfpo.reasoning import rewards as reasoning_rewards
from openrlhf_cfpo.reasoning.openrlhf_reward import response_of

PROBLEMS = [(12, 5), (3, 9), (17, 4), (8, 8), (20, 1), (6, 13), (0, 7), (11, 11)]
SAMPLES = 2  # per problem: 16 sampled answers, about half of which the reward reads (build_info: 56%)


@pytest.fixture(scope="module")
def one_thread():
    # On a busy 2-core machine two OpenMP threads wait on each other; one is faster for a model this size.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokenizer(smollm2):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2)


@pytest.fixture(scope="module")
def sampled(smollm2, tokenizer, one_thread):
    """The local engine's rollout of PROMPTS: prompt texts, the rollout, its queries as OpenRLHF decodes them."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(smollm2).eval()
    texts = format_prompts(tokenizer, [question(a, b) for a, b in PROBLEMS], apply_chat_template=True)
    torch.manual_seed(0)
    rollout = generate(
        model,
        tokenizer,
        encode_prompts(tokenizer, texts, True),
        SAMPLES,
        MAX_NEW_TOKENS,
        1.0,
        1.0,
        16,
        torch.device("cpu"),
        stop_token_ids(tokenizer, model.generation_config),
    )
    prompts = [t for t in texts for _ in range(SAMPLES)]
    labels = [str(a + b) for a, b in PROBLEMS for _ in range(SAMPLES)]
    return prompts, labels, rollout, decode_queries(tokenizer, rollout)


def test_local_rollouts_end_at_im_end_and_train_on_nothing_after_it(tokenizer, sampled):
    _, _, rollout, _ = sampled
    im_end, im_start = (tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|im_start|>"))
    response = rollout.sequences[:, -rollout.num_actions :]
    ended = 0
    for ids, mask in zip(response.tolist(), rollout.action_mask.tolist()):
        actions = ids[: sum(mask)]
        assert mask == sorted(mask, reverse=True)  # one run of action tokens, then padding
        assert im_start not in actions, tokenizer.decode(actions)  # never into an invented turn
        if im_end in actions:
            ended += 1
            assert actions.index(im_end) == len(actions) - 1, tokenizer.decode(actions)
        else:
            assert len(actions) == MAX_NEW_TOKENS  # cut by the budget, not stopped elsewhere
    assert ended >= len(response) // 2, "most answers should end their turn within the budget"


def test_training_and_eval_render_and_tokenize_the_same_conversation_identically(tokenizer):
    conversations = [question(12, 5), reasoning_data.chat_prompt("What is $1 + 1$?", "1.5B")]
    for conversation in conversations:
        text = format_prompts(tokenizer, [conversation], apply_chat_template=True)[0]
        assert text == render(tokenizer, conversation)  # local engine / OpenRLHF vs eval
        ids = encode_prompts(tokenizer, [text], True)[0]
        assert ids == prompt_token_ids(tokenizer, conversation)
        # TRL tokenizes a conversational prompt with the template directly (the reasoning recipe's prompt budget)
        assert len(ids) == reasoning_data.prompt_length(tokenizer, conversation)
        assert (
            ids
            == tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True, return_dict=True)[
                "input_ids"
            ]
        )
    # a plain-text prompt is one user turn, the same in both
    assert format_prompts(tokenizer, ["Hi"], True) == [render(tokenizer, [{"role": "user", "content": "Hi"}])]


def test_the_reward_file_finds_each_sampled_response_in_its_openrlhf_query(tokenizer, sampled):
    prompts, _, rollout, queries = sampled
    response = rollout.sequences[:, -rollout.num_actions :]
    for prompt, query, ids, mask in zip(prompts, queries, response.tolist(), rollout.action_mask.tolist()):
        assert query.startswith(prompt)  # decoding the prompt's ids gives back the rendered text
        said = tokenizer.decode(ids[: sum(mask)], skip_special_tokens=True)
        assert response_of(query, prompt) == said


def test_training_reward_and_eval_check_agree_on_every_answer_the_reward_reads(tokenizer, sampled):
    # The references differ on purpose where the reward reads no answer: the reference recipe's reward reads LaTeX
    # only (a box, or $x$ after "answer"), lighteval's MATH metric also plain numbers ("5 + 12 = 17"); see
    # tests/test_scoring_parity.py. Everywhere else the two must agree.
    prompts, labels, rollout, queries = sampled
    rewards, _, extra = RewardFunction(REWARD_FILE)(queries, prompts, labels)
    for prompt, query, label, reward, parsed in zip(
        prompts, queries, labels, rewards.tolist(), extra["answer_parsed"].tolist()
    ):
        response = response_of(query, prompt)
        _, correct = answer_check.check_math(response, label)
        if parsed:
            assert reward == float(correct), response
        else:
            assert reward == 0.0 and not reasoning_rewards.read_answer(response), response
    assert extra["answer_parsed"].sum() >= 2, (
        "too few sampled answers were read: the agreement above would prove little"
    )
    # the worked example's \boxed{7} in every prompt is never read as an answer: 0 + 7 is right only when said
    said = [response_of(q, p) for q, p in zip(queries, prompts)]
    assert all(r == 0.0 or "\\boxed" in s or "$" in s for r, s in zip(rewards.tolist(), said))


def test_eval_hf_backend_answers_end_at_im_end(smollm2, one_thread):
    backend = HFBackend(str(smollm2), batch_size=4, dtype="float32")
    assert backend.stop_token_ids == [backend.tokenizer.convert_tokens_to_ids("<|im_end|>")]
    answers = backend.generate([question(a, b) for a, b in PROBLEMS[:4]], Decoding(max_new_tokens=48))
    for answer in answers:
        assert answer and "<|im_" not in answer and "\nuser\n" not in answer, answer
    # greedy answers of the worked-example prompt follow its form: the eval reads them as the reward does
    read = [answer_check.check_math(answer, str(a + b)) for answer, (a, b) in zip(answers, PROBLEMS)]
    assert any(extracted is not None for extracted, _ in read), answers


def test_the_smollm2_arithmetic_default_trains_a_step_through_the_local_engine(smollm2, tmp_path):
    from openrlhf_cfpo.local.cli import main_local
    from openrlhf_cfpo.local.logger import RUN_SUMMARY, read_metrics

    out = tmp_path / "run"
    assert (
        main_local(
            [
                "--embedded_default",
                "smollm2_arithmetic",
                "--ckpt.output_dir",
                str(out),
                "--data.max_samples",
                "2",
                "--rollout.batch_size",
                "2",
                "--rollout.n_samples_per_prompt",
                "2",
                "--train.batch_size",
                "4",
                "--rollout.max_new_tokens",
                "24",
                "--ckpt.save_steps",
                "-1",
                "--logger.progress",
                "none",
                "--num_threads",
                "1",
                "--actor.policy_loss_type",
                "cfpo",
            ]
        )
        == 0
    )
    (row,) = read_metrics(str(out / "metrics.jsonl"))
    assert 0 <= row["reward"] <= 1 and 0 <= row["answer_parsed"] <= 1 and 0 < row["response_length"] <= 24
    config = json.loads((out / "run_config.json").read_text())
    assert config["data.apply_chat_template"] and config["actor.adam.lr"] == 5e-6  # the default's own run flags
    paths = json.loads((out / RUN_SUMMARY).read_text())["paths"]
    assert paths["reward_func"] == REWARD_FILE and paths["label_key"] == "label"


def test_the_local_engine_renders_a_rows_prompt_and_label_as_openrlhfs_own_preprocessing(tokenizer):
    from openrlhf.datasets.prompts_dataset import preprocess_data

    rows = [{"input": question(12, 5), "label": "17"}, {"input": "What is 2 + 2?", "label": "4"}]
    ours = format_prompts(tokenizer, [r["input"] for r in rows], apply_chat_template=True)
    theirs = [preprocess_data(r, None, "input", "label", tokenizer.apply_chat_template) for r in rows]
    assert [(text, r["label"]) for text, r in zip(ours, rows)] == theirs


@pytest.mark.parametrize("max_length", [None, 80])  # 80: OpenRLHF keeps only the prompt's last tokens
def test_openrlhfs_own_agent_executor_scores_the_sampled_answers_as_the_local_engine_does(
    tokenizer, sampled, max_length
):
    # OpenRLHF 0.11.2's SingleTurnAgentExecutor loads the reward file, tokenizes the prompt, appends what its (here
    # stand-in) vLLM engine returned, decodes the query and calls reward_func from a worker thread.
    import asyncio
    from types import SimpleNamespace

    from openrlhf.utils.agent import SingleTurnAgentExecutor

    prompts, labels, rollout, queries = sampled
    ours, _, _ = RewardFunction(REWARD_FILE)(queries, prompts, labels)
    assert 1.0 in ours.tolist(), "no right answer sampled: a response lost in the query would go unnoticed"
    executor = SingleTurnAgentExecutor(remote_rm_url=REWARD_FILE)
    response = rollout.sequences[:, -rollout.num_actions :]

    class Engine:  # returns the answer the local engine sampled for this prompt
        def __init__(self, ids):
            self.ids = ids

        async def generate(self, prompt_token_ids, params, multi_modal_data=None):
            return SimpleNamespace(outputs=[SimpleNamespace(token_ids=self.ids, finish_reason="stop", logprobs=None)])

    theirs = []
    for prompt, label, ids, mask in zip(prompts, labels, response.tolist(), rollout.action_mask.tolist()):
        prompt_tokens = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        budget = prompt_tokens + MAX_NEW_TOKENS if max_length is None else max_length
        params = SimpleNamespace(max_tokens=MAX_NEW_TOKENS, logprobs=None)
        out = asyncio.run(executor.execute(prompt, label, params, budget, tokenizer, Engine(ids[: sum(mask)])))
        assert out["reward"] is not None, "OpenRLHF logged a reward_func failure and left the reward out"
        theirs.append(float(out["reward"].reshape(-1)[0]))
    assert theirs == ours.tolist()
