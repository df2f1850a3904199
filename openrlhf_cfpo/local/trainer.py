"""The single-process RLHF loop: rollout, reward, advantages, then several optimizer steps per rollout.

One rollout = ``--rollout.batch_size`` prompts x ``--rollout.n_samples_per_prompt`` samples, scored by a
reward model or, for verifiable rewards, by OpenRLHF's ``reward_func`` file (``--reward.remote_url``). Its
log-probs under the sampling policy (pi_old) and the frozen reference are computed once; then
``--train.max_epochs`` passes of ``--train.batch_size``-sample optimizer steps follow, each with
the loss of :class:`openrlhf_cfpo.openrlhf.PolicyLoss` (``ppo`` or ``cfpo``). With more than one
step per rollout the policy moves away from pi_old within the rollout: the off-policy regime
where CFPO and PPO's clip differ.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
from transformers.utils import logging as hf_logging

from ..chat import stop_token_ids
from ..losses import logged_name
from ..openrlhf.policy_loss import PolicyLoss
from ..ops import aggregate_loss, masked_mean
from . import checkpoint
from .advantages import approx_kl, compute_advantages
from .config import RUN_FOLDERS, LocalConfig
from .data import minibatch_plan, rollout_indices
from .device import resolve_device, resolve_dtype
from .errors import ConfigError, DiskFullError, Interrupted, NonFiniteError, no_space
from .hf import load_pretrained, model_complete, save_model
from .lock import FolderLocks
from .logger import RUN_CONFIG, RUN_SUMMARY, RunLogger
from .logprobs import sequence_logprobs
from .preflight import Inputs, prepare, run_folder_problems, run_identity
from .rewards import RewardTimeout
from .rollout import Rollout, batched_logprobs, decode_queries, encode_prompts, format_prompts, generate, reward_scores


def check_tokenizers_match(policy_tok, reward_tok, policy_path: str, reward_path: str) -> None:
    """Token ids go from the policy to the reward model unchanged, so both must read ids alike."""
    if policy_tok.get_vocab() != reward_tok.get_vocab():
        raise ConfigError(
            f"the policy's tokenizer ({policy_path}) and the reward model's ({reward_path}) have different "
            "vocabularies; use a reward model trained on the policy's tokenizer"
        )


def build_scheduler(optimizer, name: str, warmup: int, total: int, min_lr_ratio: float):
    """OpenRLHF's schedules from torch's own pieces (transformers' get_scheduler imports peft: seconds)."""
    from torch.optim import lr_scheduler as S

    if name == "constant":
        return S.LambdaLR(optimizer, lambda _: 1.0)
    if name != "cosine_with_min_lr":
        raise ConfigError(f"--actor.lr_scheduler {name}: the local engine has cosine_with_min_lr and constant")
    lr = optimizer.param_groups[0]["lr"]
    cosine = S.CosineAnnealingLR(optimizer, T_max=max(total - warmup, 1), eta_min=lr * min_lr_ratio)
    if warmup <= 0:
        return cosine
    linear = S.LinearLR(optimizer, start_factor=1.0 / (warmup + 1), end_factor=1.0, total_iters=warmup)
    return S.SequentialLR(optimizer, [linear, cosine], milestones=[warmup])


def _shorten(text: str, limit: int = 120) -> str:
    return repr(text if len(text) <= limit else "..." + text[-limit:])


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class CtrlC:
    """SIGINT (Ctrl-C) and SIGTERM (``kill``, a job scheduler's stop) while training: the first stops the run at the
    end of the current optimizer step, saved (or at once while a rollout is being generated: that rollout is dropped
    and redone on resume); a second stops at once.

    Outside the main thread (where signal handlers cannot be set) both keep Python's defaults.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, log: Callable[[str], None]):
        self.log, self.requested, self.droppable = log, False, False
        self.previous: dict[int, object] = {}

    def __enter__(self) -> CtrlC:
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._on_signal) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, previous in self.previous.items():
            # (a handler set outside Python reads as None: Python's own is the one to put back then)
            default = signal.default_int_handler if s == signal.SIGINT else signal.SIG_DFL
            signal.signal(s, previous if previous is not None else default)

    def _on_signal(self, signum, frame) -> None:
        if self.droppable or self.requested:
            self.requested = True
            raise KeyboardInterrupt
        self.requested = True
        if signum == signal.SIGINT:
            self.log("interrupted: stopping after this optimizer step, which is saved (Ctrl-C again to stop at once)")
        else:
            self.log(
                f"{signal.Signals(signum).name}: stopping after this optimizer step, which is saved (a second one "
                "stops at once)"
            )

    @contextlib.contextmanager
    def dropping(self):
        """A stretch that Ctrl-C may cut at once because nothing of it is kept (a rollout being generated)."""
        self.droppable = True
        try:
            yield
        finally:
            self.droppable = False


class LocalTrainer:
    def __init__(self, cfg: LocalConfig, log: Callable[[str], None] = print, inputs: Inputs | None = None):
        """``inputs``: what :func:`.preflight.prepare` checked and loaded for ``cfg`` (prepared here when not given)."""
        self.cfg, self.args, self.log = cfg, cfg.args, log
        a = self.args
        self.device = resolve_device(a.device)
        self.dtype = resolve_dtype(a.ds.param_dtype, self.device)
        self.inputs = inputs if inputs is not None else prepare(cfg, log)
        self.locks = FolderLocks()
        try:
            self.run_id = self._own_run_folder()
            self._setup()
        except BaseException:
            self.locks.release(remove_created=True)  # (a refused run leaves no empty folders behind)
            raise

    def _own_run_folder(self) -> str:
        """Lock the run, checkpoint and TensorBoard folders for this process (before any model loads), then check them
        again under the locks (another run may have written there since :func:`.preflight.prepare` looked); the
        id of the run this is: the one continued, or a new one."""
        for flag in RUN_FOLDERS:
            self.locks.take(flag, self.cfg.flat[flag])
        problems = run_folder_problems(self.cfg)
        if problems:
            raise ConfigError(*problems)
        return run_identity(self.cfg)[0] or uuid.uuid4().hex

    def _setup(self) -> None:
        cfg, a = self.cfg, self.args
        self.paths = self.inputs.paths()
        self.prompt_set, self.sizes, self.reward_fn = self.inputs.prompt_set, self.inputs.sizes, self.inputs.reward_fn

        hf_logging.disable_progress_bar()
        self.tokenizer = self.inputs.tokenizer
        if self.tokenizer is None:
            self.tokenizer = load_pretrained(AutoTokenizer, "actor.model_name_or_path", self.paths["policy"])
        if self.tokenizer.eos_token_id is None:
            raise ConfigError(
                f"the policy tokenizer ({self.paths['policy']}) has no EOS token; generation could never stop"
            )
        if self.tokenizer.pad_token_id is None:
            # Padding positions are masked everywhere, so any id serves; EOS is the usual stand-in.
            self.tokenizer.pad_token = self.tokenizer.eos_token
        reward_tok = None
        if self.reward_fn is None:
            reward_tok = load_pretrained(AutoTokenizer, "reward.model_name_or_path", self.paths["reward"])
            check_tokenizers_match(self.tokenizer, reward_tok, self.paths["policy"], self.paths["reward"])
        # On a CPU, the small models this engine is for spend more time in SDPA's dispatch than in
        # attention itself; eager attention measured ~10% more trained tokens/s (benchmarks/).
        attn = "eager" if self.device.type == "cpu" else None
        # bf16 as OpenRLHF's DeepSpeed bf16 trains: the policy keeps fp32 master weights (AdamW updates
        # of ~1e-6 vanish in bf16) and computes in bf16 under autocast; the frozen models are held in bf16.
        frozen = dict(dtype=self.dtype, attn_implementation=attn)
        self.policy = load_pretrained(
            AutoModelForCausalLM,
            "actor.model_name_or_path",
            self.paths["policy"],
            dtype=torch.float32,
            attn_implementation=attn,
        ).to(self.device)
        self.ref = load_pretrained(AutoModelForCausalLM, "actor.model_name_or_path", self.paths["policy"], **frozen).to(
            self.device
        )
        self.reward_model, self.reward_pad_id = None, None
        if self.reward_fn is None:
            self.reward_model = load_pretrained(
                AutoModelForSequenceClassification, "reward.model_name_or_path", self.paths["reward"], **frozen
            ).to(self.device)
            self.reward_pad_id = self.reward_model.config.pad_token_id
            if self.reward_pad_id is None:
                self.reward_pad_id = (
                    reward_tok.pad_token_id if reward_tok.pad_token_id is not None else self.tokenizer.pad_token_id
                )
                self.reward_model.config.pad_token_id = self.reward_pad_id
        # Where a response ends: the eos ids of the tokenizer and the generation config, and the end of a chat turn.
        self.stop_ids = stop_token_ids(self.tokenizer, self.policy.generation_config)
        n_params = sum(p.numel() for p in self.policy.parameters())
        if a.num_threads > 0:
            torch.set_num_threads(a.num_threads)
        elif self.device.type == "cpu" and n_params < 20_000_000:
            # Models this small run fastest on one thread: more threads only add OpenMP synchronisation.
            torch.set_num_threads(1)
        # Dropout would make pi_theta differ from pi_old at the same weights, so the ratio of the
        # first step would not be 1: all three models stay in eval mode, gradients flow regardless.
        for m in (self.policy, self.ref, self.reward_model):
            if m is not None:
                m.eval()
        for m in (self.ref, self.reward_model):
            if m is not None:
                m.requires_grad_(False)

        eps_low, eps_high = cfg.eps_low_high
        self.loss_fn = PolicyLoss(
            eps_low, eps_high, a.actor.dual_clip, token_level_loss=True, policy_loss_type=a.actor.policy_loss_type
        )
        self.params = [p for p in self.policy.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            self.params,
            lr=a.actor.adam.lr,
            betas=tuple(a.actor.adam.betas),
            eps=a.actor.adam.eps,
            weight_decay=a.actor.adam.weight_decay,
            # One fused kernel over all parameters instead of a Python loop per tensor (the CPU default).
            fused=True,
        )
        self.scheduler = build_scheduler(
            self.optimizer,
            a.actor.lr_scheduler,
            int(a.actor.lr_warmup_ratio * self.sizes.total_steps),
            self.sizes.total_steps,
            a.actor.min_lr_ratio,
        )

        self.rollout_idx = 0
        self.step_in_rollout = 0
        self.global_step = 0
        self.buffer: Rollout | None = None
        self.plan: list[list[int]] | None = None
        self.rollout_info: dict[str, float] = {}
        self.elapsed_before = 0.0
        self.callbacks: list[Callable[[LocalTrainer, dict[str, float]], None]] = []
        _seed_everything(a.train.seed)
        if a.ckpt.load_enable:
            self._load_checkpoint()

    # ------------------------------------------------------------------ setup

    def autocast(self):
        """bf16 compute for --ds.param_dtype bf16 (on CUDA and CPU alike); nothing for fp32."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def _load_checkpoint(self) -> None:
        """The newest checkpoint that loads; one that cannot be read is passed over with a warning line."""
        found = checkpoint.newest_first(self.args.ckpt.path, self.run_id)
        if not found:
            self.log(f"--resume: no checkpoint in {self.args.ckpt.path}; starting from step 0")
            return
        for path in found:
            try:
                self._restore(checkpoint.load(path))
            except Exception as e:  # a truncated or corrupt file raises whatever its first bad byte makes torch raise
                reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
                self.log(
                    f"warning: checkpoint {path} cannot be read ({type(e).__name__}: {reason[:200]}); "
                    f"{'falling back to the previous one' if path != found[-1] else 'no earlier checkpoint is left'}"
                )
                continue
            self.log(f"resumed from {path} (step {self.global_step}/{self.sizes.total_steps})")
            return
        raise ConfigError(
            f"--resume: no checkpoint in {self.args.ckpt.path} can be read (see the warnings above); move them "
            f"away to start over, or choose another --ckpt.output_dir"
        )

    def _restore(self, state: dict) -> None:
        self.policy.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.rollout_idx, self.step_in_rollout, self.global_step = (
            state["rollout_idx"],
            state["step_in_rollout"],
            state["global_step"],
        )
        self.buffer = Rollout(**state["buffer"]) if state["buffer"] is not None else None
        self.plan, self.rollout_info = state["plan"], state["rollout_info"]
        self.elapsed_before = state["elapsed"]
        checkpoint.set_rng_state(state["rng"])

    def _save_checkpoint(self, elapsed: float) -> None:
        state = {
            "model": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rollout_idx": self.rollout_idx,
            "step_in_rollout": self.step_in_rollout,
            "global_step": self.global_step,
            "buffer": self.buffer.state_dict() if self.buffer is not None else None,
            "plan": self.plan,
            "rollout_info": self.rollout_info,
            "elapsed": elapsed,
            "rng": checkpoint.rng_state(),
        }
        run = {
            "run_id": self.run_id,
            "output_dir": str(Path(self.args.ckpt.output_dir).resolve()),
            "flags": self.cfg.flat,
            "prompts_sha256": self.inputs.prompts_sha256,
        }
        checkpoint.save(self.args.ckpt.path, self.global_step, state, self.args.ckpt.max_num, run)

    # ------------------------------------------------------------------ experience

    def _stop_if_not_finite(self, values: torch.Tensor, source: str, describe: Callable[[int], str]) -> None:
        """Raise :class:`NonFiniteError` naming ``source`` and ``describe(first bad row)`` if ``values`` has a
        nan or inf."""
        bad = ~torch.isfinite(values)
        if bad.any():
            raise NonFiniteError(self.global_step + 1, source, describe(int(bad.nonzero()[0][0])))

    @torch.no_grad()
    def make_experience(self, rollout_idx: int) -> Rollout:
        a, t0 = self.args, time.time()
        n = a.rollout.n_samples_per_prompt
        idx = rollout_indices(
            len(self.prompt_set), rollout_idx, a.rollout.batch_size, self.sizes.rollouts_per_episode, a.train.seed
        )
        texts = format_prompts(
            self.tokenizer, [self.prompt_set.prompts[i] for i in idx], a.data.apply_chat_template, a.data.input_template
        )
        prompt_ids = encode_prompts(self.tokenizer, texts, a.data.apply_chat_template)
        if self.inputs.max_prompt_tokens is not None:
            # Cut from the left, keeping the prompt's end, as OpenRLHF 0.11.2 does (openrlhf/utils/agent.py,
            # SingleTurnAgentExecutor.execute: prompt_token_ids[-max_prompt_length:]); preflight said how many.
            prompt_ids = [ids[-self.inputs.max_prompt_tokens :] for ids in prompt_ids]
        # One autocast region for the whole rollout: the policy's bf16 weight casts are made once and reused.
        with self.autocast():
            ro = generate(
                self.policy,
                self.tokenizer,
                prompt_ids,
                n,
                a.rollout.max_new_tokens,
                a.rollout.temperature,
                a.rollout.top_p,
                a.rollout.micro_batch_size,
                self.device,
                self.stop_ids,
            )
            t_gen = time.time() - t0
            mb, chunk, temp = a.rollout.micro_batch_size, a.actor.logprobs_chunk_size, a.rollout.temperature
            ro.old_log_probs = batched_logprobs(self.policy, ro, temp, mb, chunk, self.device)
            ro.ref_log_probs = batched_logprobs(self.ref, ro, temp, mb, chunk, self.device)
            if self.reward_fn is not None:
                t_reward = time.time()
                labels = [self.prompt_set.labels[i] for i in idx]
                queries = decode_queries(self.tokenizer, ro)
                rewards, scores, extra = self.reward_fn(
                    queries,
                    [t for t in texts for _ in range(n)],
                    [y for y in labels for _ in range(n)],
                    timeout=getattr(a.reward, "timeout", None),
                    log=self.log,
                    batch=f"rollout {rollout_idx} (before step {self.global_step + 1})",
                )
                ro.rewards, ro.info = rewards, {"score": scores, **extra}
                t_reward = time.time() - t_reward
                self._stop_if_not_finite(
                    ro.rewards,
                    "reward",
                    lambda i: (
                        f"reward_func of {self.reward_fn.path} returned "
                        f"{ro.rewards[i].item()} for the query {_shorten(queries[i])}"
                    ),
                )
            else:
                ro.rewards = reward_scores(self.reward_model, ro, self.reward_pad_id, mb, self.device)
                self._stop_if_not_finite(
                    ro.rewards,
                    "reward",
                    lambda i: (
                        f"the reward model {self.paths['reward']} scored "
                        f"sample {i} of rollout {rollout_idx} {ro.rewards[i].item()}"
                    ),
                )
        ro.kl = approx_kl(ro.old_log_probs, ro.ref_log_probs, a.algo.kl.estimator) * ro.action_mask
        ro.advantages, ro.returns = compute_advantages(
            ro.rewards,
            ro.kl,
            ro.action_mask,
            a.rollout.n_samples_per_prompt,
            a.algo.advantage.estimator,
            a.algo.kl.init_coef,
            tuple(a.reward.clip_range),
        )
        self._stop_if_not_finite(
            ro.advantages.masked_fill(ro.action_mask == 0, 0),
            "advantage",
            lambda i: (
                f"{a.algo.advantage.estimator} advantages of rollout {rollout_idx} from the finite rewards "
                f"{ro.rewards.reshape(-1, n)[i // n].tolist()} and a KL to the reference of "
                f"{masked_mean(ro.kl[i], ro.action_mask[i].float()).item()} per token"
            ),
        )
        groups = ro.rewards.reshape(-1, a.rollout.n_samples_per_prompt)
        self.rollout_info = {
            "group_reward_std": groups.std(-1).mean().item(),
            "timing/generation": t_gen,
            **({"timing/reward_func": t_reward} if self.reward_fn is not None else {}),
            "timing/make_experience": time.time() - t0,
        }
        return ro

    # ------------------------------------------------------------------ optimisation

    def train_step(self, batch: Rollout) -> dict[str, float]:
        a = self.args
        n_tokens = batch.action_mask.sum().item()
        # zero_grad(set_to_none=True) without the optimizer's profiling and dynamo wrappers (~3% of a tiny step).
        for p in self.params:
            p.grad = None
        sums = {"policy_loss": 0.0, "entropy": 0.0}
        # The surrogate's diagnostics (token means, as the registry declares), over the whole step.
        token_sums = {k: 0.0 for k in self.loss_fn.surrogate.metrics}
        mb = a.train.micro_batch_size
        for s in range(0, batch.sequences.shape[0], mb):
            whole = s == 0 and mb >= batch.sequences.shape[0]
            micro = batch if whole else batch.select(list(range(s, min(s + mb, batch.sequences.shape[0]))))
            # Drop response columns that are padding in every row of this micro-batch (causal
            # attention: later columns never change earlier positions).
            width = int(micro.action_mask.sum(0).nonzero().max().item()) + 1
            cut = micro.num_actions - width
            seq = micro.sequences[:, : micro.sequences.shape[1] - cut].to(self.device)
            attn = micro.attention_mask[:, : seq.shape[1]].to(self.device)
            mask = micro.action_mask[:, :width].to(self.device)
            with self.autocast():
                log_probs, entropy = sequence_logprobs(
                    self.policy,
                    seq,
                    attn,
                    width,
                    temperature=a.rollout.temperature,
                    chunk_size=a.actor.logprobs_chunk_size,
                    entropy_grad=bool(a.actor.entropy_coef),
                )
            # Normalised by the whole step's token count, so micro-batches add up to OpenRLHF's token mean.
            out = self.loss_fn.compute(
                log_probs,
                micro.old_log_probs[:, :width].to(self.device),
                micro.advantages[:, :width].to(self.device),
                action_mask=mask,
                batch_num_tokens=n_tokens,
            )
            entropy_mean = aggregate_loss(entropy, mask, batch_num_tokens=n_tokens)
            total = out.loss - a.actor.entropy_coef * entropy_mean if a.actor.entropy_coef else out.loss
            loss, entropy_value = out.loss.item(), entropy_mean.item()
            if not math.isfinite(loss) or (a.actor.entropy_coef and not math.isfinite(entropy_value)):
                raise NonFiniteError(
                    self.global_step + 1,
                    "loss",
                    f"{a.actor.policy_loss_type} loss {loss}, entropy {entropy_value}, from finite advantages",
                )
            total.backward()
            share = mask.sum().item()
            sums["policy_loss"] += loss
            sums["entropy"] += entropy_value
            for k, value in out.metrics.items():
                token_sums[k] += float(value) * share
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, a.actor.max_norm))
        if not math.isfinite(grad_norm):
            raise NonFiniteError(self.global_step + 1, "gradient", f"norm {grad_norm} from a finite loss")
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()

        mask = batch.action_mask.float()
        metrics = {
            "policy_loss": sums["policy_loss"],
            "entropy": sums["entropy"],
            **{logged_name("openrlhf", k): v / n_tokens for k, v in token_sums.items()},
            "actor_grad_norm": grad_norm,
            "actor_lr": lr,
            "reward": batch.rewards.mean().item(),
            "return": (batch.returns[:, 0]).mean().item(),
            "response_length": mask.sum(1).mean().item(),
            "total_length": batch.attention_mask.float().sum(1).mean().item(),
            "kl": masked_mean(batch.kl, mask, dim=-1).mean().item(),
            "advantages": masked_mean(batch.advantages, mask).item(),
        }
        # reward_func's score and extra_logs: sample means over the step, as OpenRLHF merges its info.
        for k, v in (batch.info or {}).items():
            finite = v[~v.isnan()]
            metrics[k] = finite.mean().item() if finite.numel() else math.nan
        return metrics

    # ------------------------------------------------------------------ loop

    def _save_at_boundary(self, elapsed: float, saved: bool) -> Path | None:
        """At a step boundary, before stopping: save this step (unless just saved); the checkpoint to resume from
        (None when checkpoints are off)."""
        if self.args.ckpt.save_steps <= 0:
            return None
        if not saved:
            self._save_checkpoint(elapsed)
        return checkpoint.latest(self.args.ckpt.path, self.run_id)

    def _stop_interrupted(self, elapsed: float, saved: bool) -> None:
        """At a step boundary after Ctrl-C or SIGTERM: save this step and raise Interrupted."""
        raise Interrupted(self.global_step, self.sizes.total_steps, self._save_at_boundary(elapsed, saved))

    def _stop_reward_timeout(self, error: RewardTimeout, elapsed: float, saved: bool) -> None:
        """A reward_func call outlasted --reward.timeout: this step saved, as Ctrl-C saves it, then one line."""
        path = self._save_at_boundary(elapsed, saved)
        kept = (
            f"saved step {self.global_step} as {path}: `--resume` continues from it"
            if path is not None
            else f"nothing saved (--ckpt.save_steps {self.args.ckpt.save_steps})"
        )
        raise RewardTimeout(
            f"{error}; {kept}; the call itself cannot be stopped (it runs in a thread), so the process must exit"
        ) from None

    def fit(self) -> dict[str, float]:
        """Train what is left of the run; the run folder's locks are released at the end, however it ends."""
        try:
            return self._fit()
        except OSError as e:  # (the saves and the logger name what they were writing themselves)
            if no_space(e):
                raise DiskFullError(e.filename or self.args.ckpt.output_dir) from None
            raise
        finally:
            self.locks.release()

    def _fit(self) -> dict[str, float]:
        a, sizes = self.args, self.sizes
        out = Path(a.ckpt.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        _write_text(out / RUN_CONFIG, self.cfg.to_json(run_id=self.run_id, prompts_sha256=self.inputs.prompts_sha256))
        label = f"{a.actor.policy_loss_type} kl={a.algo.kl.init_coef:g}"
        logger = RunLogger(
            str(out), a.logger.tensorboard_dir, sizes.total_steps, self.global_step, a.logger.progress, label
        )
        t0, start_step = time.time(), self.global_step
        tokens_trained = 0
        last: dict[str, float] = {}
        saved = False
        ctrl_c = CtrlC(self.log)
        failed = True
        try:
            with ctrl_c:
                while self.rollout_idx < sizes.num_rollouts:
                    if self.buffer is None:
                        rng = checkpoint.rng_state()
                        try:
                            with ctrl_c.dropping():
                                buffer = self.make_experience(self.rollout_idx)
                        except KeyboardInterrupt:
                            checkpoint.set_rng_state(
                                rng
                            )  # as if this rollout had never started: resume redoes it exactly
                            self._stop_interrupted(self.elapsed_before + time.time() - t0, saved=False)
                        except RewardTimeout as e:  # (the rollout is dropped, as by Ctrl-C)
                            checkpoint.set_rng_state(rng)
                            self._stop_reward_timeout(e, self.elapsed_before + time.time() - t0, saved)
                        self.buffer = buffer
                        self.plan = minibatch_plan(
                            sizes.samples_per_rollout,
                            a.train.batch_size,
                            a.train.max_epochs,
                            a.train.seed,
                            self.rollout_idx,
                        )
                        self.step_in_rollout = 0
                    t_step = time.time()
                    batch = self.buffer.select(self.plan[self.step_in_rollout])
                    metrics = self.train_step(batch)
                    tokens_trained += int(batch.action_mask.sum())
                    self.global_step += 1
                    self.step_in_rollout += 1
                    record = {
                        "step": self.global_step,
                        "rollout": self.rollout_idx,
                        "epoch": (self.step_in_rollout - 1) // sizes.steps_per_epoch,
                        **metrics,
                        **(self.rollout_info if self.step_in_rollout == 1 else {}),
                        "group_reward_std": self.rollout_info.get("group_reward_std", 0.0),
                        "timing/train_step": time.time() - t_step,
                        "time": self.elapsed_before + time.time() - t0,
                    }
                    if self.step_in_rollout == sizes.steps_per_rollout:
                        self.buffer, self.plan = None, None
                        self.rollout_idx += 1
                    logger.log(record)
                    last = record
                    saved = a.ckpt.save_steps > 0 and self.global_step % a.ckpt.save_steps == 0
                    if saved:
                        self._save_checkpoint(record["time"])
                    for cb in self.callbacks:
                        cb(self, record)
                    if ctrl_c.requested and self.rollout_idx < sizes.num_rollouts:  # (after the last step: just finish)
                        self._stop_interrupted(record["time"], saved)
                failed = False
        finally:
            logger.close(quiet=failed)  # (after an error, its own errors would only hide the first one)
        elapsed = self.elapsed_before + time.time() - t0
        model = out / "model"
        restored_model = not last and not model_complete(model)
        if last and not saved:
            self._save_checkpoint(elapsed)
        if last or restored_model:  # a finished run whose model/ a full disk or a kill kept from being written
            save_model(self.policy, self.tokenizer, model)
        summary = {
            "steps": self.global_step,
            "wall_time_s": round(elapsed, 2),
            "steps_this_session": self.global_step - start_step,
            "wall_time_this_session_s": round(time.time() - t0, 2),
            "tokens_trained_this_session": tokens_trained,
            "model_written_from_checkpoint": restored_model,
            "sizes": sizes.__dict__,
            "paths": self.paths,
        }
        _write_text(out / RUN_SUMMARY, json.dumps(summary, indent=2))
        return summary


def _write_text(path: Path, text: str) -> None:
    """``text`` into ``path`` through a temporary sibling renamed over it: a kill mid-write leaves the old file whole
    (``--resume`` reads run_config.json)."""
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if no_space(e):
            raise DiskFullError(path, len(text.encode())) from None
        raise
