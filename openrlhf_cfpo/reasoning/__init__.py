"""The paper's reasoning (RLVR) experiments: Qwen2.5 on MATH with GRPO or CFPO, in TRL and in verl.

One job per module:

- :mod:`~openrlhf_cfpo.reasoning.data`: MATH rows -> chat prompts with the paper's system prompt and the solution
  as label, prompts over the token budget dropped (arXiv 2601.22801, section 4.1, appendix B.1);
- :mod:`~openrlhf_cfpo.reasoning.rewards`: the reference recipe's accuracy reward (1.0 when the completion's LaTeX
  answer equals the solution's under math-verify), as a TRL reward function and as a verl ``compute_score``;
- :mod:`~openrlhf_cfpo.reasoning.verifier`: math-verify as the paper's references read answers, from any thread;
- :mod:`~openrlhf_cfpo.reasoning.trl_grpo`: the TRL training entry point (``train_scripts/*_qwen25_math_trl.sh``);
- :mod:`~openrlhf_cfpo.reasoning.verl_data`: writes the prepared data as verl parquet
  (``train_scripts/*_qwen25_math_verl.sh``).

Needs the ``reasoning`` extra (math-verify, datasets).
"""
