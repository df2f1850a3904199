"""train_scripts/*_qwen25_math_verl.sh in verl 0.9.1's own terms: its Hydra config, its dataset, its reward loader.

Runs in .venv-verl (`make test`). The printed overrides are composed onto verl's ``ppo_trainer`` config and checked
by verl's ``validate_config``, as ``python -m verl.trainer.main_ppo`` does before it starts Ray; the prepared
parquet is read by verl's ``RLHFDataset``; the reward is loaded by verl's ``get_custom_reward_fn``.
"""

import importlib.util
import os
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = {"cfpo": "cfpo_qwen25_math_verl.sh", "vanilla": "grpo_qwen25_math_verl.sh"}
ENV_KEYS = ("NUM_NODES", "GPUS_PER_NODE", "OUTPUT_DIR", "WANDB_API_KEY", "PYTHON")
pytestmark = pytest.mark.filterwarnings("ignore:Disabled critic")  # verl's note for every GRPO config


def _offline_math():
    path = os.path.join(ROOT, "tests", "reasoning", "offline_math.py")
    spec = importlib.util.spec_from_file_location("offline_math", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


offline = _offline_math()


def dry_run(script, *args, env=None):
    """``(prepare_argv, train_argv)``: the two commands a script prints with --dry-run."""
    clean = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    proc = subprocess.run(
        ["bash", os.path.join(ROOT, "train_scripts", script), "--dry-run", *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    prepare, train = (shlex.split(line) for line in proc.stdout.strip().split("\n"))
    assert prepare[1:3] == ["-m", "openrlhf_cfpo.reasoning.verl_data"], prepare
    assert (
        train[0] == "env" and train[1].startswith("TENSORBOARD_DIR=") and train[3:5] == ["-m", "verl.trainer.main_ppo"]
    )
    return prepare, train


def overrides(train_argv):
    return train_argv[5:]


def compose(override_list):
    """verl's ppo_trainer config with these overrides, validated as main_ppo validates it."""
    import verl
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from verl.trainer.main_ppo import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    config_dir = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        config = hydra_compose(config_name="ppo_trainer", overrides=list(override_list))
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    return config


@pytest.mark.parametrize("loss", ["cfpo", "vanilla"])
@pytest.mark.parametrize("iterations,batch_ratio", [(1, 1), (4, 2), (8, 8)])
def test_dry_run_composes_into_verls_config_with_the_papers_settings(loss, iterations, batch_ratio):
    from verl.trainer.main_ppo import need_reference_policy
    from verl.trainer.ppo.core_algos import get_policy_loss_fn
    from verl.utils.config import omega_conf_to_dataclass
    from verl.workers.config import ActorConfig

    _, train = dry_run(SCRIPTS[loss], "--iterations", str(iterations), "--batch-ratio", str(batch_ratio))
    config = compose(overrides(train))
    actor = omega_conf_to_dataclass(config.actor_rollout_ref.actor)  # as verl's actor worker builds it
    assert isinstance(actor, ActorConfig)

    assert actor.policy_loss.loss_mode == loss and get_policy_loss_fn(loss) is not None
    assert (actor.clip_ratio_low, actor.clip_ratio_high) == (0.2, 0.2)
    # where Table 3 is silent, the reference recipe: token-mean (TRL's bnpo, verl's default) and 1 epoch
    assert actor.loss_agg_mode == "token-mean" and config.trainer.total_epochs == 1
    assert config.algorithm.adv_estimator == "grpo" and config.algorithm.norm_adv_by_std_in_grpo
    assert not need_reference_policy(config) and not actor.use_kl_loss and not config.algorithm.use_kl_in_reward
    # off-policy pressure: iterations = ppo_epochs, batch ratio = train_batch_size / ppo_mini_batch_size
    assert actor.ppo_epochs == iterations
    assert config.data.train_batch_size == 128
    assert config.data.train_batch_size // config.actor_rollout_ref.actor.ppo_mini_batch_size == batch_ratio
    assert config.actor_rollout_ref.rollout.n == 3 and config.actor_rollout_ref.rollout.temperature == 0.9
    assert config.actor_rollout_ref.rollout.name == "vllm"
    assert (config.data.max_prompt_length, config.data.max_response_length) == (512, 3072)
    optim = actor.optim
    assert optim.lr == 3e-6 and optim.lr_scheduler_type == "cosine" and optim.lr_warmup_steps_ratio == 0.1
    assert tuple(optim.betas) == (0.9, 0.999) and dict(optim.override_optimizer_config) == {"eps": 1e-8}
    assert optim.weight_decay == 0.0 and optim.optimizer == "AdamW"
    assert config.actor_rollout_ref.model.path == "Qwen/Qwen2.5-3B"
    assert config.reward.custom_reward_function.path == "pkg://openrlhf_cfpo.reasoning.rewards"
    assert config.reward.custom_reward_function.name == "compute_score"
    run_name = f"{'cfpo' if loss == 'cfpo' else 'grpo'}_qwen2.5-3b_verl_it{iterations}_br{batch_ratio}"
    assert config.trainer.experiment_name == run_name and run_name in config.trainer.default_local_dir
    assert config.trainer.max_actor_ckpt_to_keep == 2  # the newest two checkpoints, not every one


def test_cfpo_and_grpo_verl_recipes_differ_only_in_the_loss_mode():
    prepare_c, train_c = dry_run(SCRIPTS["cfpo"], "--iterations", "4", "--batch-ratio", "4")
    prepare_g, train_g = dry_run(SCRIPTS["vanilla"], "--iterations", "4", "--batch-ratio", "4")
    assert prepare_c == prepare_g  # one prepared dataset serves both
    as_dict = lambda argv: dict(item.split("=", 1) for item in overrides(argv))  # noqa: E731
    c, g = as_dict(train_c), as_dict(train_g)
    assert {k for k in c.keys() | g.keys() if c.get(k) != g.get(k)} == {
        "actor_rollout_ref.actor.policy_loss.loss_mode",
        "trainer.experiment_name",
        "trainer.default_local_dir",
    }
    assert train_c[1].replace("cfpo_", "grpo_") == train_g[1]  # the TensorBoard folder is the run's


def test_loss_agg_mode_flag_chooses_the_aggregation():
    _, train = dry_run(SCRIPTS["cfpo"], "--loss-agg-mode", "seq-mean-token-mean")  # eq. 8 as written
    assert compose(overrides(train)).actor_rollout_ref.actor.loss_agg_mode == "seq-mean-token-mean"


def test_mini_batch_after_double_dash_that_matches_the_batch_ratio_is_accepted():
    _, train = dry_run(SCRIPTS["cfpo"], "--batch-ratio", "4", "--", "actor_rollout_ref.actor.ppo_mini_batch_size=32")
    assert compose(overrides(train)).actor_rollout_ref.actor.ppo_mini_batch_size == 32


def test_model_size_sets_the_policy_and_the_7b_learning_rate():
    prepare, train = dry_run(SCRIPTS["cfpo"], "--model-size", "7B", "--instruct")
    config = compose(overrides(train))
    assert config.actor_rollout_ref.model.path == "Qwen/Qwen2.5-7B-Instruct"
    assert config.actor_rollout_ref.actor.optim.lr == 1e-6
    assert prepare[prepare.index("--model-size") + 1] == "7B"
    assert config.data.train_files.startswith(prepare[prepare.index("--output-dir") + 1])


def test_hydra_overrides_after_double_dash_win():
    _, train = dry_run(SCRIPTS["cfpo"], "--", "trainer.total_epochs=1", "data.val_max_samples=50")
    config = compose(overrides(train))
    assert config.trainer.total_epochs == 1 and config.data.val_max_samples == 50


def test_verl_loads_our_reward_function_and_it_scores_boxed_answers():
    from verl.trainer.ppo.reward import get_custom_reward_fn

    _, train = dry_run(SCRIPTS["cfpo"])
    reward = get_custom_reward_fn(compose(overrides(train)))
    kwargs = dict(data_source="DigitalLearningGmbH/MATH-lighteval", extra_info={"split": "train", "index": 0})
    solution = "so $p = \\boxed{\\frac{1}{2}}$"  # the label: the MATH solution
    assert reward(solution_str="so \\boxed{0.5}", ground_truth=solution, **kwargs) == 1.0
    assert reward(solution_str="so \\boxed{3}", ground_truth=solution, **kwargs) == 0.0
    assert reward(solution_str="no answer", ground_truth=solution, **kwargs) == 0.0


def test_prepared_parquet_is_what_verls_dataset_reads(tmp_path):
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset

    from openrlhf_cfpo.reasoning import verl_data
    from openrlhf_cfpo.reasoning.data import SYSTEM_PROMPTS, chat_prompt, prompt_length

    tokenizer = offline.build_chat_tokenizer()
    tokenizer_dir = tmp_path / "tokenizer"
    tokenizer.save_pretrained(tokenizer_dir)
    overhead = prompt_length(tokenizer, chat_prompt("", "3B"))
    at_budget = " ".join(["x"] * (512 - overhead))
    math_dir = tmp_path / "math"
    math_dir.mkdir()
    offline.write_jsonl(
        math_dir / "train.jsonl",
        [
            offline.math_row("what is x = 4 ?", "so $x = \\boxed{4}$"),
            offline.math_row("no answer to read", "see the figure"),
            offline.math_row(at_budget, "\\boxed{\\frac{1}{2}}"),
            offline.math_row(at_budget + " x", "\\boxed{5}"),
        ],
    )
    offline.write_jsonl(math_dir / "test.jsonl", [offline.math_row("what is 5 ?", "\\boxed{5}")])
    paths = verl_data.main(
        [
            "--model",
            str(tokenizer_dir),
            "--model-size",
            "3B",
            "--output-dir",
            str(tmp_path / "data"),
            "--dataset",
            str(math_dir),
        ]
    )
    assert [os.path.basename(p) for p in paths] == ["train.parquet", "test.parquet", "generation_config"]

    _, train = dry_run(SCRIPTS["cfpo"], "--data-dir", str(tmp_path / "data"))
    data_config = compose(overrides(train)).data
    assert data_config.train_files == paths[0] and data_config.val_files == paths[1]
    dataset = RLHFDataset(
        data_files=data_config.train_files,
        tokenizer=tokenizer,
        config=OmegaConf.merge(data_config, {"filter_overlong_prompts_workers": 1}),
    )
    dataset._read_files_and_tokenize()  # verl's own over-long filter keeps everything we kept
    assert len(dataset) == 2
    first, second = dataset[0], dataset[1]
    assert first["raw_prompt"] == [
        {"role": "system", "content": SYSTEM_PROMPTS["3B"]},
        {"role": "user", "content": "what is x = 4 ?"},
    ]
    assert first["data_source"] == "DigitalLearningGmbH/MATH-lighteval" and first["ability"] == "math"
    assert first["reward_model"] == {"style": "rule", "ground_truth": "so $x = \\boxed{4}$"}
    assert first["extra_info"] == {"split": "train", "index": 0} and first["index"] == 0
    assert second["reward_model"]["ground_truth"] == "\\boxed{\\frac{1}{2}}" and second["index"] == 2


def test_verl_rollouts_stop_where_the_chat_turn_ends_when_the_eos_is_another_token(tmp_path):
    # A Qwen2.5 base model: eos <|endoftext|> in its tokenizer and generation config, chat turns closed by <|im_end|>.
    # vLLM adds the eos ids of the generation config it is pointed at to every request's stop_token_ids
    # (vllm/config/model.py try_get_generation_config, vllm/sampling_params.py update_from_generation_config).
    from transformers import GenerationConfig
    from verl.utils.config import omega_conf_to_dataclass

    from openrlhf_cfpo.reasoning import verl_data

    tokenizer = offline.build_chat_tokenizer(base_eos=True)
    model_dir = tmp_path / "base-model"
    tokenizer.save_pretrained(model_dir)
    GenerationConfig(eos_token_id=tokenizer.eos_token_id, do_sample=False, max_new_tokens=2048).save_pretrained(
        model_dir
    )
    math_dir = tmp_path / "math"
    math_dir.mkdir()
    for split in ("train", "test"):
        offline.write_jsonl(math_dir / f"{split}.jsonl", [offline.math_row("what is x = 4 ?", "so $x = \\boxed{4}$")])
    data_dir = tmp_path / "data"
    verl_data.main(
        ["--model", str(model_dir), "--model-size", "3B", "--output-dir", str(data_dir), "--dataset", str(math_dir)]
    )

    _, train = dry_run(SCRIPTS["cfpo"], "--data-dir", str(data_dir))
    rollout = omega_conf_to_dataclass(compose(overrides(train)).actor_rollout_ref.rollout)  # as verl's workers read it
    generation_dir = rollout.engine_kwargs["vllm"]["generation_config"]  # handed to `vllm serve --generation_config`
    read_by_vllm = GenerationConfig.from_pretrained(generation_dir).to_diff_dict()
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert im_end != tokenizer.eos_token_id
    assert read_by_vllm["eos_token_id"] == [tokenizer.eos_token_id, im_end]
    assert read_by_vllm["max_new_tokens"] == 2048  # the rest of the model's own generation config is kept


def test_the_policy_loads_with_the_recipes_attention_where_flash_attn_is_not_installed(tmp_path):
    # verl 0.9.1 builds the policy's config with flash_attention_2 unless told otherwise (workers/config/model.py:185);
    # the verl-gpu extra installs no flash-attn. The recipe's sdpa must load and compute verl's padding-free packed
    # micro-batches (several sequences in one row, positions restarting) as separate sequences.
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config, Qwen2ForCausalLM
    from verl.utils.config import omega_conf_to_dataclass

    tokenizer = offline.build_chat_tokenizer(base_eos=True)
    model_dir = tmp_path / "tiny-qwen2"
    torch.manual_seed(0)
    Qwen2ForCausalLM(
        Qwen2Config(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=64,
        )
    ).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    _, train = dry_run(SCRIPTS["cfpo"], "--", f"actor_rollout_ref.model.path={model_dir}")
    model_config = omega_conf_to_dataclass(compose(overrides(train)).actor_rollout_ref.model)  # as verl's workers do
    assert model_config.hf_config._attn_implementation == "sdpa"
    model = AutoModelForCausalLM.from_config(model_config.hf_config).eval()

    first, second = torch.tensor([[3, 4, 5, 6, 7]]), torch.tensor([[8, 9, 10]])
    packed = torch.cat([first, second], dim=1)
    positions = torch.tensor([[0, 1, 2, 3, 4, 0, 1, 2]])
    with torch.no_grad():
        together = model(input_ids=packed, position_ids=positions, use_cache=False).logits  # as verl calls it
        apart = torch.cat([model(input_ids=first).logits, model(input_ids=second).logits], dim=1)
    torch.testing.assert_close(together, apart)


def test_the_dry_run_checks_the_command_with_verls_own_config():
    env = {k: v for k, v in os.environ.items() if k != "OPENRLHF_CFPO_SKIP_COMMAND_CHECK"}
    env["PYTHON"] = sys.executable
    script = os.path.join(ROOT, "train_scripts", SCRIPTS["cfpo"])
    for extra, status, said in (([], 0, "passed verl's own parser"), (["data.no_such_key=3"], 2, "data.no_such_key")):
        proc = subprocess.run(
            ["bash", script, "--dry-run", "--", *extra], capture_output=True, text=True, env=env, timeout=600
        )
        last = proc.stderr.strip().splitlines()[-1]
        assert proc.returncode == status and said in last, proc.stderr[-2000:]
