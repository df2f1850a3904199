"""train_scripts/*_qwen25_math_trl.sh: the printed command is what TRL parses into paper Table 3, and runs."""

import os

import pytest

from openrlhf_cfpo.reasoning import trl_grpo

SCRIPTS = {"cfpo": "cfpo_qwen25_math_trl.sh", "ppo": "grpo_qwen25_math_trl.sh"}
MODULE = "openrlhf_cfpo.reasoning.trl_grpo"


def launch_and_script_args(argv):
    """accelerate's launch arguments and the entry point's, from a printed command."""
    assert argv[1:3] == ["-m", "accelerate.commands.launch"], argv
    i = argv.index(MODULE)
    return argv[3 : i + 1], argv[i + 1 :]


@pytest.fixture
def parse_as_launched(monkeypatch):
    """Parse a printed command as each of its accelerate processes does, on a bf16 GPU node."""
    import transformers
    import transformers.training_args

    def parse(argv):
        from accelerate.commands.launch import launch_command_parser

        launch, script = launch_and_script_args(argv)
        launched = launch_command_parser().parse_args(launch)
        assert launched.module and launched.training_script == MODULE
        monkeypatch.setattr(transformers.training_args, "is_torch_bf16_gpu_available", lambda *a, **k: True)
        monkeypatch.setattr(transformers.TrainingArguments, "world_size", property(lambda self: launched.num_processes))
        script_args, training_args = trl_grpo.parse_args(script)
        return launched, script_args, training_args

    return parse


@pytest.mark.parametrize("loss", ["cfpo", "ppo"])
@pytest.mark.parametrize(
    "size,instruct,iterations,lr", [("1.5B", False, 1, 3e-6), ("3B", True, 8, 3e-6), ("7B", False, 16, 1e-6)]
)
def test_dry_run_parses_with_trl_into_table_3(loss, size, instruct, iterations, lr, helpers, parse_as_launched):
    argv = helpers.trl_command(
        SCRIPTS[loss], "--model-size", size, "--iterations", str(iterations), *(["--instruct"] if instruct else [])
    )
    launched, script, args = parse_as_launched(argv)

    assert script.model_name_or_path == f"Qwen/Qwen2.5-{size}{'-Instruct' if instruct else ''}"
    assert script.model_size == size and script.dtype == "bfloat16"
    assert (script.dataset_name, script.dataset_config, script.dataset_split) == (
        "DigitalLearningGmbH/MATH-lighteval",
        "default",
        "train",
    )
    assert script.max_prompt_length == 512
    assert args.policy_loss_type == loss and args.scale_rewards == "group"
    # where Table 3 is silent, the reference recipe: its TRL's default aggregation (bnpo) and 1 epoch
    assert args.loss_type == "bnpo" and args.num_train_epochs == 1
    assert args.epsilon == 0.2 and args.epsilon_high is None and args.beta == 0.0
    assert args.num_iterations == iterations
    # one update: 128 problems x 3 completions, generated once and trained in one optimizer step per iteration
    assert args.num_generations == 3
    assert args.generation_batch_size == 128 * 3
    assert args.per_device_train_batch_size * launched.num_processes * args.gradient_accumulation_steps == 384
    assert args.steps_per_generation == args.gradient_accumulation_steps
    assert args.max_completion_length == 3072 and args.temperature == 0.9 and args.top_p == 1.0
    assert args.use_vllm and args.vllm_mode == "colocate" and not args.vllm_importance_sampling_correction
    assert args.save_total_limit == 2  # the newest two checkpoints, not every one
    assert args.learning_rate == lr and args.lr_scheduler_type == "cosine" and args.warmup_steps == 0.1
    assert (args.adam_beta1, args.adam_beta2, args.adam_epsilon) == (0.9, 0.999, 1e-8) and "adamw" in args.optim
    assert args.bf16 and launched.mixed_precision == "bf16" and launched.use_deepspeed and launched.zero_stage == 2
    tag = f"qwen2.5-{size.lower()}{'-instruct' if instruct else ''}"
    run_name = f"{'cfpo' if loss == 'cfpo' else 'grpo'}_{tag}_trl_it{iterations}"
    assert args.run_name == run_name and os.path.basename(args.output_dir) == run_name


def test_cfpo_and_grpo_recipes_differ_only_in_the_policy_loss(helpers, parse_as_launched):
    cfpo, grpo = (helpers.trl_command(SCRIPTS[loss], "--iterations", "4") for loss in ("cfpo", "ppo"))
    assert len(cfpo) == len(grpo)
    assert {(a, b) for a, b in zip(cfpo, grpo) if a != b} == {
        ("cfpo", "ppo"),
        ("./runs/cfpo_qwen2.5-3b_trl_it4", "./runs/grpo_qwen2.5-3b_trl_it4"),
        ("cfpo_qwen2.5-3b_trl_it4", "grpo_qwen2.5-3b_trl_it4"),
    }
    (_, script_c, args_c), (_, script_g, args_g) = parse_as_launched(cfpo), parse_as_launched(grpo)
    assert script_c == script_g
    differing = {k for k, v in args_c.to_dict().items() if args_g.to_dict()[k] != v}
    assert differing == {"policy_loss_type", "output_dir", "run_name"}


def test_flags_after_double_dash_reach_trl_last_and_override_the_recipe(helpers, parse_as_launched):
    argv = helpers.trl_command(SCRIPTS["cfpo"], "--", "--num_train_epochs", "1", "--max_prompt_length", "256")
    assert argv[-4:] == ["--num_train_epochs", "1", "--max_prompt_length", "256"]
    _, script, args = parse_as_launched(argv)
    assert args.num_train_epochs == 1 and script.max_prompt_length == 256


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo", "dapo"])
def test_loss_type_flag_chooses_any_aggregation_the_trl_adapter_implements(loss_type, helpers, parse_as_launched):
    from openrlhf_cfpo.trl import AGGREGATIONS

    assert loss_type in AGGREGATIONS  # grpo: eq. 8 as written, the per-completion token mean, then over completions
    _, _, args = parse_as_launched(helpers.trl_command(SCRIPTS["cfpo"], "--loss-type", loss_type))
    assert args.loss_type == loss_type


def test_loss_type_flag_refuses_a_loss_type_the_adapter_does_not_aggregate_with(helpers):
    proc = helpers.dry_run(SCRIPTS["cfpo"], "--loss-type", "cispo")  # TRL's, with a surrogate of its own
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.count("\n") == 1
    assert "--loss-type must be one of bnpo, grpo, dr_grpo, dapo (got 'cispo')" in proc.stderr


@pytest.mark.parametrize(
    "after",
    [
        ["--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "24"],
        ["--per-device-train-batch-size=8", "--gradient_accumulation_steps=6", "--num_generations", "3"],
        ["--generation_batch_size", "384"],
    ],
)
def test_sizing_flags_after_double_dash_that_keep_the_update_are_accepted(after, helpers, parse_as_launched):
    launched, _, args = parse_as_launched(helpers.trl_command(SCRIPTS["cfpo"], "--", *after))
    assert args.per_device_train_batch_size * launched.num_processes * args.gradient_accumulation_steps == 384
    assert args.generation_batch_size == 384 and args.num_generations == 3


def test_gpu_count_and_micro_batch_keep_the_update_at_384_completions(helpers, parse_as_launched):
    launched, _, args = parse_as_launched(
        helpers.trl_command(SCRIPTS["cfpo"], "--gpus-per-node", "4", "--micro-batch-size", "2")
    )
    assert launched.num_processes == 4 and args.per_device_train_batch_size == 2
    assert args.gradient_accumulation_steps == 48 and args.generation_batch_size == 384
    launched, _, args = parse_as_launched(helpers.trl_command(SCRIPTS["ppo"], env={"GPUS_PER_NODE": "6"}))
    assert launched.num_processes == 6 and args.generation_batch_size == 384


def test_wandb_key_switches_reporting_to_wandb_without_printing_the_key(helpers):
    argv = helpers.trl_command(SCRIPTS["cfpo"], "--wandb-key", "secret-key")
    assert argv[argv.index("--report_to") + 1] == "wandb" and "secret-key" not in argv
    argv = helpers.trl_command(SCRIPTS["cfpo"])
    assert argv[argv.index("--report_to") + 1] == "tensorboard"


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--model_size", "2B"], "1.5B, 3B, 7B"),
        (["--max_prompt_length", "512", "--max_prompt_lenght", "9"], "not used by the HfArgumentParser"),
        (["--policy_loss_type", "cfpo", "--loss_type", "cispo"], "surrogate of its own"),
    ],
)
def test_the_entry_point_rejects_bad_arguments_before_loading_anything(argv, match, monkeypatch, tmp_path):
    monkeypatch.setattr("transformers.AutoTokenizer.from_pretrained", lambda *a, **k: pytest.fail("loaded a tokenizer"))
    with pytest.raises(ValueError, match=match):
        trl_grpo.main(
            [
                "--model_name_or_path",
                "Qwen/Qwen2.5-3B",
                "--output_dir",
                str(tmp_path),
                "--use_cpu",
                "true",
                "--bf16",
                "false",
                *argv,
            ]
        )


def test_the_entry_point_trains_cfpo_on_prepared_math_with_the_boxed_reward(tmp_path, helpers, tiny_policy):
    # the tiny policy's vocabulary has the words "\boxed{4}" and "\boxed{5}": some samples are right, some wrong
    rows = [helpers.math_row(f"what is x = {i} ?", f"so $x = \\boxed{{{i}}}$") for i in (4, 5, 4, 5)]
    rows.append(helpers.math_row(" ".join(["x"] * 400), "\\boxed{1}"))  # over the prompt budget: dropped
    data = helpers.write_jsonl(tmp_path / "math.jsonl", rows)
    out = tmp_path / "run"
    trainer = trl_grpo.main(
        [
            "--model_name_or_path",
            tiny_policy,
            "--dtype",
            "float32",
            "--model_size",
            "3B",
            "--dataset_name",
            data,
            "--max_prompt_length",
            "128",
            "--policy_loss_type",
            "cfpo",
            "--loss_type",
            "grpo",
            "--epsilon",
            "0.2",
            "--beta",
            "0.0",
            "--num_iterations",
            "2",
            "--num_generations",
            "3",
            "--per_device_train_batch_size",
            "12",
            "--gradient_accumulation_steps",
            "1",
            "--max_completion_length",
            "6",
            "--temperature",
            "0.9",
            "--max_steps",
            "2",
            "--learning_rate",
            "1e-2",
            "--lr_scheduler_type",
            "constant",
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
            "--output_dir",
            str(out),
        ]
    )
    assert len(trainer.train_dataset) == 4
    assert sorted(trainer.train_dataset["answer"]) == sorted(row["solution"] for row in rows[:4])  # the labels
    first, second = [entry for entry in trainer.state.log_history if "loss" in entry]
    # one generation (4 problems x 3 samples) trained twice (num_iterations=2): the second step is off-policy
    assert 0 < first["rewards/boxed_answer_reward/mean"] < 1
    assert first["cfpo_penalty"] == 0 and second["cfpo_penalty"] > 0
    assert os.path.isfile(out / "model.safetensors")


TRAIN_ONE_STEP = [
    "--policy_loss_type",
    "cfpo",
    "--num_generations",
    "3",
    "--per_device_train_batch_size",
    "12",
    "--gradient_accumulation_steps",
    "1",
    "--max_steps",
    "1",
    "--learning_rate",
    "1e-3",
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
    "--seed",
    "0",
]


def test_completions_end_where_the_chat_turn_ends_when_the_eos_is_another_token(
    tmp_path, helpers, tiny_base_policy, monkeypatch
):
    # A base model's eos (<|endoftext|>) is not where its chat turn ends (<|im_end|>): TRL's transformers path must
    # stop, and mask, at <|im_end|> too. The rewards see the completion ids as TRL trains on them.
    seen = []

    def recording_reward(completions, answer, completion_ids, **kwargs):
        seen.extend(completion_ids)
        return [0.0] * len(completions)

    monkeypatch.setattr(trl_grpo, "boxed_answer_reward", recording_reward)
    rows = [helpers.math_row(f"what is x = {i} ?", f"\\boxed{{{i}}}") for i in (4, 5, 4, 5)]
    out = tmp_path / "run"
    trl_grpo.main(
        [
            "--model_name_or_path",
            tiny_base_policy,
            "--dtype",
            "float32",
            "--model_size",
            "3B",
            "--dataset_name",
            helpers.write_jsonl(tmp_path / "math.jsonl", rows),
            "--max_completion_length",
            "24",
            "--temperature",
            "1.0",
            "--output_dir",
            str(out),
            *TRAIN_ONE_STEP,
        ]
    )
    tokenizer = helpers.build_chat_tokenizer(base_eos=True)
    im_end, eos = tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.eos_token_id
    assert im_end != eos and len(seen) == 12
    ended = [ids for ids in seen if im_end in ids]
    assert ended, "no sample reached <|im_end|>: the check below would prove nothing"
    assert all(ids.index(im_end) == len(ids) - 1 for ids in ended)  # nothing generated or trained after the turn
    # the checkpoint stops there too, in whatever generates from it next
    from transformers import GenerationConfig

    assert im_end in GenerationConfig.from_pretrained(out).eos_token_id


def test_vllm_generation_gets_the_end_of_turn_as_a_stop_id(tiny_base_policy, helpers, tmp_path):
    # TRL hands GRPOConfig.generation_kwargs to vLLM's SamplingParams in colocate and server mode alike
    # (trl/generation/vllm_generation.py:627 and 672); vLLM itself would stop only at the hub's generation config.
    from transformers import AutoModelForCausalLM

    tokenizer = helpers.build_chat_tokenizer(base_eos=True)
    model = AutoModelForCausalLM.from_pretrained(tiny_base_policy)
    args = trl_grpo.GRPOConfig(
        output_dir=str(tmp_path),
        use_vllm=True,
        use_cpu=True,
        bf16=False,
        generation_kwargs={"stop_token_ids": [5], "top_k": 3},
    )
    ids = trl_grpo.stop_at_the_end_of_a_turn(model, tokenizer, args)
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert ids == [tokenizer.eos_token_id, im_end] == model.generation_config.eos_token_id
    assert args.generation_kwargs == {"stop_token_ids": [5, tokenizer.eos_token_id, im_end], "top_k": 3}


def test_a_real_chat_model_trains_through_the_recipe_and_its_rewards_match_the_openrlhf_reward_file(
    tmp_path, helpers, smollm2, monkeypatch
):
    # SmolLM2-135M-Instruct: its real ChatML template renders the paper's system prompt, its completions end at
    # <|im_end|> (nothing generated or trained after the turn), and every reward TRL gives equals what the OpenRLHF
    # reward file gives the same completion decoded as OpenRLHF decodes it (the prompt's text, then the response).
    import torch
    from transformers import AutoTokenizer

    from openrlhf_cfpo.local.rewards import RewardFunction
    from openrlhf_cfpo.reasoning import openrlhf_reward

    seen, reward = [], trl_grpo.boxed_answer_reward

    def recording_reward(completions, answer, completion_ids, prompts, **kwargs):
        values = reward(completions, answer)
        seen.extend(zip(prompts, completions, completion_ids, answer, values))
        return values

    monkeypatch.setattr(trl_grpo, "boxed_answer_reward", recording_reward)
    rows = [helpers.math_row(f"What is ${a} + {b}$?", f"${a} + {b} = \\boxed{{{a + b}}}$") for a, b in ((2, 3), (7, 5))]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # faster for a model this size on a busy machine
    try:
        trl_grpo.main(
            [
                "--model_name_or_path",
                str(smollm2),
                "--dtype",
                "float32",
                "--model_size",
                "1.5B",
                "--dataset_name",
                helpers.write_jsonl(tmp_path / "math.jsonl", rows),
                "--max_completion_length",
                "40",
                "--temperature",
                "1.0",
                "--output_dir",
                str(tmp_path / "run"),
                *TRAIN_ONE_STEP[:4],
                "--per_device_train_batch_size",
                "6",
                *TRAIN_ONE_STEP[6:],
            ]
        )
    finally:
        torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    reward_file = RewardFunction(openrlhf_reward.__file__)
    assert len(seen) == 6
    for prompt, completion, ids, solution, value in seen:
        text = completion[0]["content"]
        assert "<|im_start|>" not in tokenizer.decode(ids) and (im_end not in ids or ids.index(im_end) == len(ids) - 1)
        rendered = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        assert "Please enclose your final answer in the box" in rendered  # the paper's 1.5B system prompt
        query = rendered + tokenizer.decode(ids, skip_special_tokens=False)
        assert reward_file([query], [rendered], [solution])[0].item() == (0.0 if value is None else value), text
