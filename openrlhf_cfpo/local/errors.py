"""The local engine's errors, each reported by the command line as one line (imports nothing, so every module can raise them)."""

# What a shell reports for a process ended by Ctrl-C (128 + SIGINT); a run stopped by Ctrl-C exits with it.
EXIT_INTERRUPTED = 130


class ConfigError(ValueError):
    """Bad input, reported as one line before any training."""


class RewardFuncError(RuntimeError):
    """``reward_func`` raised or returned something OpenRLHF could not use either; one line."""


class NonFiniteError(RuntimeError):
    """A reward, advantage, loss or gradient that is not finite: the run stops before an optimizer step or a
    checkpoint uses it, so the weights and the checkpoints on disk stay finite."""

    def __init__(self, step: int, source: str, detail: str):
        super().__init__(f"step {step}: the {source} is not finite ({detail}); stopped before any optimizer step or checkpoint used it")
        self.step, self.source = step, source


class Interrupted(Exception):
    """Ctrl-C stopped the run at a step boundary; ``checkpoint`` is where it was saved (None with --ckpt.save_steps -1)."""

    def __init__(self, step: int, total: int, checkpoint):
        super().__init__(f"interrupted at step {step}/{total}")
        self.step, self.total, self.checkpoint = step, total, checkpoint
