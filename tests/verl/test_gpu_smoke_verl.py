"""gpu-smoke's verl part in verl 0.9.1's own terms: its overrides compose onto verl's ppo_trainer config and pass
verl's validate_config, as ``python -m verl.trainer.main_ppo`` checks them before it starts Ray."""

import importlib.util
import os

from openrlhf_cfpo import gpu_smoke

HERE = os.path.dirname(os.path.abspath(__file__))


def _recipe_tests():
    spec = importlib.util.spec_from_file_location(
        "verl_recipe_tests", os.path.join(HERE, "test_reasoning_verl_recipe.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_verl_part_is_one_cfpo_step_on_one_gpu_that_verl_accepts(tmp_path):
    assets = gpu_smoke.Assets(
        policy="/models/policy",
        reward="/models/reward",
        prompts="p.jsonl",
        eval_data="eval",
        verl_data=str(tmp_path / "verl.parquet"),
    )
    argv = gpu_smoke.verl_command("/opt/verl/bin/python", assets, tmp_path / "verl")
    assert argv[:3] == ["/opt/verl/bin/python", "-m", "verl.trainer.main_ppo"]
    config = _recipe_tests().compose(argv[3:])
    actor, rollout = config.actor_rollout_ref.actor, config.actor_rollout_ref.rollout
    assert actor.policy_loss.loss_mode == "cfpo" and rollout.name == "vllm" and rollout.n == gpu_smoke.SAMPLES
    assert (
        config.trainer.total_training_steps == 1 and config.trainer.n_gpus_per_node == 1 and config.trainer.nnodes == 1
    )
    assert config.actor_rollout_ref.model.override_config.attn_implementation == "sdpa"
    assert config.data.train_batch_size * rollout.n // (actor.ppo_mini_batch_size * rollout.n) == 2  # 2 optimizer steps


def test_the_verl_parts_data_is_what_verls_dataset_reads_and_its_reward_scores_it(tmp_path):
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.utils.dataset.rl_dataset import RLHFDataset

    assets = gpu_smoke.build_assets(tmp_path / "assets")
    config = _recipe_tests().compose(gpu_smoke.verl_overrides(assets, tmp_path / "verl"))
    dataset = RLHFDataset(
        data_files=config.data.train_files,
        tokenizer=AutoTokenizer.from_pretrained(assets.policy),
        config=OmegaConf.merge(config.data, {"filter_overlong_prompts_workers": 1}),
    )
    assert len(dataset) == gpu_smoke.PROMPTS == config.data.train_batch_size  # one step's worth, none dropped
    row = dataset[0]
    reward = get_custom_reward_fn(config)
    assert (
        reward(
            solution_str="\\boxed{5}",
            ground_truth=row["reward_model"]["ground_truth"],
            data_source=row["data_source"],
            extra_info=row["extra_info"],
        )
        == 1.0
    )
