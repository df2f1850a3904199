"""The embedded defaults: built offline by one machinery, cached per default, the arithmetic one with verifiable rewards."""
import ast
import json
from pathlib import Path

from openrlhf_cfpo.local.arithmetic import ARITHMETIC, ArithmeticSettings
from openrlhf_cfpo.local.assets import BuildSettings, cache_name, embedded_defaults


def test_each_embedded_default_has_its_own_cache_folder():
    names = {cache_name(BuildSettings()), cache_name(BuildSettings.tiny()), cache_name(ArithmeticSettings()), cache_name(ArithmeticSettings.tiny())}
    assert len(names) == 4 and cache_name(BuildSettings()) == "assets-v1"  # the chat default's folder is unchanged
    assert set(embedded_defaults()) == {"chat", "arithmetic"}


def test_the_arithmetic_default_holds_a_policy_labelled_prompts_and_no_reward_model(tiny_arithmetic):
    info = tiny_arithmetic.build_info
    assert info["embedded_default"] == "arithmetic" and 0.0 <= info["sft_sample_accuracy"] <= 1.0
    assert tiny_arithmetic.reward is None and tiny_arithmetic.label_key == "label"
    assert (Path(tiny_arithmetic.policy) / "config.json").exists()
    rows = [json.loads(line) for line in open(tiny_arithmetic.prompts)]
    a, b = (int(x.replace(" ", "")) for x in rows[0]["input"].rstrip(" =").split(" + "))
    assert rows[0]["label"] == str(a + b) and len(rows) == ArithmeticSettings.tiny().n_prompts


def test_the_arithmetic_reward_file_imports_nothing_but_torch_so_it_moves_to_a_cluster_unchanged():
    tree = ast.parse(Path(ARITHMETIC.reward_func).read_text())
    imported = {n.names[0].name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"torch", "re", "math"}
