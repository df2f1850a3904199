"""The embedded defaults: registered in one place, built offline by one machinery, cached per default."""

import ast
import json
import subprocess
import sys
from pathlib import Path

from openrlhf_cfpo.local import embedded
from openrlhf_cfpo.local.embedded.arithmetic import ArithmeticSettings
from openrlhf_cfpo.local.embedded.chat import ChatSettings


def test_every_registered_default_is_the_module_of_its_name():
    assert set(embedded.REGISTRY) == {"chat", "arithmetic", "smollm2_arithmetic"}
    for name in embedded.REGISTRY:
        assert embedded.get(name).name == name


def test_each_embedded_default_has_its_own_cache_folder():
    chat, arithmetic = embedded.get("chat"), embedded.get("arithmetic")
    names = {
        chat.cache_name(),
        chat.cache_name(ChatSettings.tiny()),
        arithmetic.cache_name(),
        arithmetic.cache_name(ArithmeticSettings.tiny()),
    }
    assert (
        len(names) == 4 and chat.cache_name() == "assets-v1" and arithmetic.cache_name() == "arithmetic-v1"
    )  # existing caches stay valid


def test_the_embedded_default_cache_folder_is_the_same_in_every_process():
    code = (
        "from openrlhf_cfpo.local import embedded; from openrlhf_cfpo.local.embedded.chat import ChatSettings; "
        "print(embedded.get('chat').cache_name(ChatSettings.tiny()))"
    )
    names = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**__import__("os").environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(names) == 1 and names.pop().startswith("assets-v1-")


def test_the_arithmetic_default_holds_a_policy_labelled_prompts_and_no_reward_model(tiny_arithmetic):
    info = tiny_arithmetic.build_info
    assert info["embedded_default"] == "arithmetic" and 0.0 <= info["sft_sample_accuracy"] <= 1.0
    assert tiny_arithmetic.reward is None and tiny_arithmetic.label_key == "label"
    assert (Path(tiny_arithmetic.policy) / "config.json").exists()
    rows = [json.loads(line) for line in open(tiny_arithmetic.prompts)]
    a, b = (int(x.replace(" ", "")) for x in rows[0]["input"].rstrip(" =").split(" + "))
    assert rows[0]["label"] == str(a + b) and len(rows) == ArithmeticSettings.tiny().n_prompts


def test_the_arithmetic_reward_file_imports_nothing_but_torch_so_it_moves_to_a_cluster_unchanged():
    tree = ast.parse(Path(embedded.get("arithmetic").reward_func).read_text())
    imported = {n.names[0].name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"torch", "re", "math"}


def _local_imports(path: Path, package: str) -> set:
    """Modules of openrlhf_cfpo.local that ``path`` imports anywhere (at the top or inside a function)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            target = f"{base}.{node.module}" if node.module else base
            found |= {target} if node.module else {f"{target}.{a.name}" for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("openrlhf_cfpo.local"):
            found.add(node.module)
    return {m for m in found if m.startswith("openrlhf_cfpo.local")}


def test_the_local_engine_has_no_import_cycles():
    root = Path(embedded.__file__).parent.parent
    graph = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = name if parts[-1] == "__init__" else name.rsplit(".", 1)[0]
        graph[name] = {m for m in _local_imports(path, package) if m != name}
    # a `from .embedded import X` may name a module or an attribute of the package: keep what is a module
    graph = {m: {t if t in graph else t.rsplit(".", 1)[0] for t in targets} for m, targets in graph.items()}
    state = {}

    def visit(module, trail):
        if state.get(module) == "open":
            raise AssertionError("import cycle: " + " -> ".join(trail[trail.index(module) :] + [module]))
        if state.get(module) != "done":
            state[module] = "open"
            for target in sorted(graph.get(module, ())):
                # a package's __init__ is what its submodules run first; importing the package from inside is no cycle
                if not module.startswith(target + "."):
                    visit(target, trail + [module])
            state[module] = "done"

    for module in sorted(graph):
        visit(module, [])
