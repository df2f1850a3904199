"""Names the dead-code pass (`make lint`: vulture over openrlhf_cfpo/ and benchmarks/) must not report.

Each is called or read by code vulture does not scan: a framework, the standard library, a name-based lookup, or the
tests. Vulture's whitelist syntax (``_.name``: an attribute or method of any object); never imported, never run.
Add a name here only with its reason; anything else vulture reports is dead and goes.
"""
# ruff: noqa
# http.server's and transformers' callbacks, by name (benchmarks/bench_judge_concurrency.py, bench_local_throughput.py)
protocol_version, disable_nagle_algorithm, _.log_message, _.do_POST, _.request_queue_size
_.on_train_begin, _.on_log, control, kw
# attributes set on a tokenizer / argparse action / tokenizers object, read by their library
_.padding_side, _.default, _.pre_tokenizer, _.post_processor
_.bos_token, _.unk_token, _.model_max_length, _.clean_up_tokenization_spaces
# signal-handler and sys.excepthook signatures (openrlhf_cfpo/local/trainer.py)
exc, frame, signum
# registered by decorator into the loss registry (openrlhf_cfpo/losses.py)
ppo_loss, cfpo_loss
# module __getattr__ (PEP 562), torch.autograd.Function / nn.Module.forward, importlib's loader protocol
__getattr__, _.forward, _.create_module
# looked up by name: `openrlhf-cfpo compare|sweep|plot` (openrlhf_cfpo/cli/main.py), Ray's worker setup hook
# (openrlhf_cfpo.openrlhf.train_ppo_ray.install), verl's custom_reward_function (compute_score and its keywords)
main_compare, main_sweep, main_plot, install, compute_score, extra_info
# PolicyLossOutput's field, read by position as OpenRLHF's 5-tuple
ppo_kl
# the tests' build sizes (ArithmeticSettings.tiny, ChatSettings.tiny)
_.tiny
# vLLM imports a worker extension by its dotted name (openrlhf_cfpo.openrlhf.weight_sync.WORKER_EXTENSION)
CheckedWorkerWrap
# a train script's --dry-run runs it by name in the framework's Python (openrlhf_cfpo.recipe_commands.FRAMEWORK_CHECKS)
check_flags
