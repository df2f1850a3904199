"""The local engine's errors, each reported by the command line as one line (imports nothing, so every module can raise them)."""


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
