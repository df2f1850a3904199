"""The local engine's errors, each reported by the command line as one line (imports nothing, so every module can raise them)."""


class ConfigError(ValueError):
    """Bad input, reported as one line before any training."""


class RewardFuncError(RuntimeError):
    """``reward_func`` raised or returned something OpenRLHF could not use either; one line."""
