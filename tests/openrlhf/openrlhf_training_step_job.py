"""One OpenRLHF 0.11.2 policy update on CPU, run in a process of its own by test_openrlhf_training_step.py.

    python tests/openrlhf/openrlhf_training_step_job.py MODEL_DIR OUT_DIR

What runs is OpenRLHF's own code, as a policy worker of ``python -m openrlhf_cfpo.cli.train_ppo_ray``
runs it: the arguments come out of our entry point's parsing and checks (it is stopped right where
OpenRLHF's ``train()`` would build its strategy), our worker hook is installed the way Ray installs
it (before ``ppo_actor`` is imported), then the real ``PolicyModelActor.init_model_from_pretrained``
(DeepSpeed ZeRO 2, bf16, gloo, world size 1) and ``PolicyModelActor.fit`` (``ppo_train``) run.
Rollout samples are laid out as OpenRLHF's samples generator lays them out, old log-probs come from
``PolicyModelActor.forward`` and RLOO advantages from OpenRLHF's ``RemoteExperienceMaker``.

For each loss (cfpo, ppo) and each regime (``on_policy``: old log-probs from the model itself, so
r = 1; ``off_policy``: old log-probs shifted by known offsets) it saves to OUT_DIR/results.pt: the
experiences the trainer got, the gradient the optimizer applied, the weights before and after, and
the status ``fit`` returned. The test asserts on them; this file asserts nothing.

This process patches torch.cuda for good and leaves a process group open: never import it.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

os.environ.setdefault("DS_ACCELERATOR", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stubs"))

import openrlhf_on_cpu  # noqa: E402  (tests/stubs: the CPU answers to OpenRLHF's GPU calls)

openrlhf_on_cpu.apply()

import importlib  # noqa: E402

import torch  # noqa: E402

from openrlhf_cfpo.openrlhf.train_ppo_ray import SETUP_HOOK  # noqa: E402

# What a Ray worker does with the setup hook our entry point hands Ray ("module.function"): import
# and call it, before anything of OpenRLHF is imported there. The test checks the hook handed is this one.
_module, _function = SETUP_HOOK.rsplit(".", 1)
getattr(importlib.import_module(_module), _function)()

N_PROMPTS, N_SAMPLES = 4, 2
ROLLOUT_MICRO_BATCH, TRAIN_MICRO_BATCH = 2, 2
TRAIN_BATCH = N_PROMPTS * N_SAMPLES  # one optimizer step over 4 micro-batches
RESPONSE_LENGTHS = [2, 12, 3, 9, 11, 2, 4, 10]
# log(pi_old / pi_theta) per action token in the off-policy regime, i.e. log r = -offset. Every
# value keeps log r at least 0.08 away from PPO's region edges (r = 0.8 and 1.2), so bf16 round-off
# in the trainer's own forward pass cannot move a token across an edge. Short responses get only
# offsets outside the region, long ones any: a per-sample mean then differs from the token mean.
OFFSETS = torch.tensor([-0.7, -0.45, -0.3, -0.08, 0.0, 0.06, 0.12, 0.4, 0.6])
OUTSIDE = torch.tensor([-0.7, -0.45, -0.3, 0.4, 0.6])
SHORT = 6


def flags(loss: str, model: str) -> list:
    return [
        "--actor.model_name_or_path",
        model,
        "--actor.policy_loss_type",
        loss,
        "--actor.eps_clip",
        "0.2",
        "--algo.advantage.estimator",
        "rloo",
        "--rollout.n_samples_per_prompt",
        str(N_SAMPLES),
        "--rollout.batch_size",
        str(N_PROMPTS),
        "--rollout.micro_batch_size",
        str(ROLLOUT_MICRO_BATCH),
        "--train.batch_size",
        str(TRAIN_BATCH),
        "--train.micro_batch_size",
        str(TRAIN_MICRO_BATCH),
        "--algo.kl.init_coef",
        "0",
        "--ds.zero_stage",
        "2",
        "--ds.param_dtype",
        "bf16",
        "--ds.attn_implementation",
        "sdpa",
        "--vllm.num_engines",
        "0",
        "--actor.adam.lr",
        "1e-3",
        "--actor.lr_warmup_ratio",
        "0",
        "--actor.num_gpus_per_node",
        "1",
        "--train.seed",
        "7",
    ]


class StrategyRequested(Exception):
    """Raised where OpenRLHF's train() asks for its strategy: the parsed, checked args are ready."""


def args_from_our_entry_point(argv: list):
    """The hierarchical args OpenRLHF's ``train()`` gets when run by ``openrlhf_cfpo.cli.train_ppo_ray``."""
    import openrlhf.utils
    import ray

    from openrlhf_cfpo.cli import train_ppo_ray

    runtime_envs = []

    def fake_ray_init(*args, runtime_env=None, **kwargs):
        runtime_envs.append(runtime_env)

    def stop_at_strategy(args):
        raise StrategyRequested(args)

    saved = ray.is_initialized, ray.init, openrlhf.utils.get_strategy
    ray.is_initialized, ray.init, openrlhf.utils.get_strategy = (lambda: False), fake_ray_init, stop_at_strategy
    try:
        train_ppo_ray.main(argv)
    except StrategyRequested as stop:
        (args,) = stop.args
    else:
        raise RuntimeError("OpenRLHF's train() never asked for a strategy")
    finally:
        ray.is_initialized, ray.init, openrlhf.utils.get_strategy = saved
    (runtime_env,) = runtime_envs
    return args, runtime_env


def rollout_samples(tokenizer):
    """Single-sample Experiences laid out as SamplesGenerator._process_response_into_experience does."""
    from openrlhf.trainer.ppo_utils.experience import Experience

    from openrlhf_cfpo.local.embedded.chat import TOPICS, prompt_text

    g = torch.Generator().manual_seed(1)
    topics = list(TOPICS)[:N_PROMPTS]
    word_ids = [tokenizer.convert_tokens_to_ids(w) for ws in TOPICS.values() for w in ws]
    rewards = torch.rand(len(RESPONSE_LENGTHS), generator=g) * 2 - 1
    samples = []
    for i, length in enumerate(RESPONSE_LENGTHS):
        prompt = tokenizer(prompt_text(topics[i // N_SAMPLES]))["input_ids"]
        response = [word_ids[j] for j in torch.randint(len(word_ids), (length - 1,), generator=g)]
        tokens = torch.tensor(prompt + response + [tokenizer.eos_token_id])
        attention_mask = torch.ones_like(tokens)
        action_mask = torch.zeros_like(attention_mask)
        action_mask[len(prompt) :] = 1
        samples.append(
            Experience(
                sequences=tokens.unsqueeze(0),
                attention_mask=attention_mask.unsqueeze(0),
                action_mask=action_mask[1:].unsqueeze(0),
                prompts=[prompt_text(topics[i // N_SAMPLES])],
                labels=[""],
                rewards=rewards[i : i + 1],
                response_length=torch.tensor([length]),
                truncated=torch.tensor([False]),
                total_length=torch.tensor([float(len(tokens))]),
                info={"response_clip_ratio": torch.tensor([False]), "reward": rewards[i : i + 1]},
            )
        )
    return samples


def make_experiences(policy, strategy, regime: str):
    """OpenRLHF's experience making, with the policy worker's own forward for the old log-probs.

    Returns the experiences and, per experience, the policy's own log-probs (before any offset).
    """
    from openrlhf.trainer.ppo_utils.experience_maker import RemoteExperienceMaker
    from openrlhf.trainer.ppo_utils.kl_controller import FixedKLController

    maker = RemoteExperienceMaker(None, None, None, None, FixedKLController(0.0), strategy, policy.tokenizer)
    experiences = maker.split_rollout_samples(rollout_samples(policy.tokenizer))
    g = torch.Generator().manual_seed(2)
    for exp in experiences:
        exp.action_log_probs = policy.forward(exp.sequences, exp.action_mask, exp.attention_mask)
        exp.kl = torch.zeros_like(exp.action_log_probs)
        exp.info["kl"] = torch.zeros(len(exp.sequences))
    experiences = maker.compute_advantages_and_returns(experiences)
    policy_log_probs = [exp.action_log_probs.clone() for exp in experiences]
    for exp in experiences:
        if regime == "off_policy":
            short = (exp.response_length < SHORT).unsqueeze(-1)
            pick = torch.randint(len(OFFSETS), exp.action_log_probs.shape, generator=g)
            offsets = torch.where(short, OUTSIDE[pick % len(OUTSIDE)], OFFSETS[pick])
            exp.action_log_probs = exp.action_log_probs + offsets * exp.action_mask
    return experiences, policy_log_probs


def record_steps(policy) -> dict:
    """Counts micro-batches, and keeps the flat fp32 gradient each optimizer step applies."""
    zero = policy.actor.model.optimizer  # DeepSpeed's ZeRO-2 optimizer
    inner = zero.optimizer  # the torch AdamW it steps, one param group at a time
    record = {"micro_batches": 0, "gradients": []}
    training_step, zero_step, inner_step = policy.trainer.training_step, zero.step, inner.step

    def count_micro_batch(*args, **kwargs):
        record["micro_batches"] += 1
        return training_step(*args, **kwargs)

    def start_step(*args, **kwargs):
        record["gradients"].append([])
        return zero_step(*args, **kwargs)

    def keep_gradient(*args, **kwargs):  # after DeepSpeed's unscale and clip
        record["gradients"][-1] += [
            p.grad.detach().float().flatten() for group in inner.param_groups for p in group["params"]
        ]
        return inner_step(*args, **kwargs)

    policy.trainer.training_step, zero.step, inner.step = count_micro_batch, start_step, keep_gradient
    return record


def policy_worker(loss: str, model: str):
    """OpenRLHF's policy worker for args our entry point parsed: (the runtime_env it gave Ray, strategy, worker)."""
    from openrlhf.trainer.ray import ppo_actor
    from openrlhf.utils import get_strategy

    args, runtime_env = args_from_our_entry_point(flags(loss, model))
    strategy = get_strategy(args)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The class behind OpenRLHF's @ray.remote PolicyModelActor: what a Ray worker instantiates.
    policy = ppo_actor.PolicyModelActor.__ray_actor_class__(1, 0, "127.0.0.1", port)
    policy.init_model_from_pretrained(strategy, model, max_steps=4)
    return runtime_env, strategy, policy


def one_update(loss: str, model: str, regime: str) -> dict:
    runtime_env, strategy, policy = policy_worker(loss, model)
    experiences, policy_log_probs = make_experiences(policy, strategy, regime)
    saved = [
        {k: getattr(exp, k).clone() for k in ("action_mask", "action_log_probs", "advantages")}
        | {"policy_log_probs": lp}
        for exp, lp in zip(experiences, policy_log_probs)
    ]
    record = record_steps(policy)
    weights_before = {k: v.detach().clone() for k, v in policy.actor.model.module.state_dict().items()}
    for exp in experiences:
        policy.append(exp)
    status = policy.fit(kl_ctl=0.0)
    weights_after = {k: v.detach().clone() for k, v in policy.actor.model.module.state_dict().items()}
    loss_fn = policy.trainer.actor_loss_fn
    return {
        "runtime_env": runtime_env,
        "loss_class": f"{type(loss_fn).__module__}.{type(loss_fn).__qualname__}",
        "loss_type": loss_fn.policy_loss_type,
        "eps": (loss_fn.clip_eps_low, loss_fn.clip_eps_high),
        "trainer_module": type(policy.trainer).__module__,
        "experiences": saved,
        "micro_batches": record["micro_batches"],
        "gradients": [torch.cat(step) for step in record["gradients"]],
        "weights_before": weights_before,
        "weights_after": weights_after,
        "status": status,
    }


def update_with_a_nan_advantage(loss: str, model: str) -> dict:
    """The on-policy update, with one action token's advantage nan in the third of four micro-batches (what a nan
    reward does through its group's baseline): what the worker raises, and whether any weight moved."""
    _, strategy, policy = policy_worker(loss, model)
    experiences, _ = make_experiences(policy, strategy, "on_policy")
    row, col = (int(i) for i in experiences[2].action_mask.nonzero()[0])
    experiences[2].advantages[row, col] = float("nan")
    record = record_steps(policy)
    weights_before = {k: v.detach().clone() for k, v in policy.actor.model.module.state_dict().items()}
    for exp in experiences:
        policy.append(exp)
    try:
        policy.fit(kl_ctl=0.0)
        error = None
    except Exception as e:  # what a Ray actor would send the driver
        error = (type(e).__name__, str(e))
    weights_after = {k: v.detach().clone() for k, v in policy.actor.model.module.state_dict().items()}
    return {
        "error": error,
        "micro_batches": record["micro_batches"],
        "optimizer_steps": len(record["gradients"]),
        "weights_unchanged": all(torch.equal(weights_before[k], weights_after[k]) for k in weights_before),
    }


def main(model: str, out_dir: str) -> None:
    results = {
        (loss, regime): one_update(loss, model, regime)
        for loss in ("cfpo", "ppo")
        for regime in ("on_policy", "off_policy")
    }
    # last: an update that raises may leave the process group mid-step
    results[("cfpo", "nan_advantage")] = update_with_a_nan_advantage("cfpo", model)
    torch.save(results, Path(out_dir) / "results.pt")


if __name__ == "__main__":
    main(*sys.argv[1:])
