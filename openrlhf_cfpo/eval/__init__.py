"""Evaluation suite: AlpacaEval 2.0, Arena-Hard v0.1, MT-Bench, IFEval and the OpenLLM tasks, plus the paper's tables.

Entry point: `openrlhf-cfpo eval ...` (see `openrlhf_cfpo.eval.cli`). Heavy libraries (torch, transformers,
alpaca-eval, lm-eval, openai) are imported by the modules that need them, so `eval report` stays light.
"""
