"""The embedded default: a single-process RLHF engine (CPU first) with the package's PPO / CFPO loss.

Entry points: ``openrlhf-cfpo local`` (train), ``compare`` (CFPO vs clipped RLOO), ``sweep`` (GRPO vs CFPO over
iterations of sample reuse) and ``plot``.
"""
