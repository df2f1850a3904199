"""The GPU install path (README's main job, docs/gpu-node.md, dockerfile/Dockerfile) names only what setup.py defines,
installs what the recipes and the eval suite import, and keeps its CUDA major in step with torch's."""

import ast
import os
import re

from openrlhf_cfpo import doctor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(*path) -> str:
    with open(os.path.join(ROOT, *path), encoding="utf-8") as f:
        return f.read()


def setup_extras() -> dict:
    """setup.py's EXTRAS, evaluated from its source (running setup.py would run setup())."""
    tree = ast.parse(_read("setup.py"))
    names = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            names[node.targets[0].id] = eval(compile(ast.Expression(node.value), "setup.py", "eval"), {}, dict(names))
    return names["EXTRAS"]


def extras_in(text: str) -> set:
    return {name for group in re.findall(r"\.\[([\w,-]+)\]", text) for name in group.split(",")}


def gpu_section() -> str:
    """The GPU node's page, from its "Driver first" section on."""
    page = _read("docs", "gpu-node.md")
    return page[page.index("## Driver first") :]


def dockerfile_install_extras() -> set:
    return extras_in(" ".join(line for line in _read("dockerfile", "Dockerfile").splitlines() if "pip install" in line))


def test_every_extra_the_readme_and_the_image_install_is_defined_in_setup_py():
    named = extras_in(_read("README.md")) | extras_in(gpu_section()) | dockerfile_install_extras()
    assert {"gpu-build", "openrlhf", "eval"} <= named
    assert named - set(setup_extras()) == set()


def test_the_image_installs_every_extra_that_the_train_scripts_and_the_eval_suite_import():
    needed = {
        doctor.PACKAGES[name].extra
        for recipe in ("llama3-rlhf", "qwen25-math-trl", "eval")
        for name in doctor.RECIPES[recipe].packages
    }
    needed |= {doctor.PACKAGES["lm_eval"].extra, doctor.PACKAGES["alpaca_eval"].extra}  # eval/run_suite.sh's benchmarks
    assert needed - dockerfile_install_extras() == set()
    assert "verl" not in dockerfile_install_extras()  # verl pins transformers<5.11: an environment of its own


def test_the_nvcc_the_build_installs_is_of_the_cuda_major_the_image_compiles_with():
    (toolkit,) = [req for req in setup_extras()["gpu-build"] if req.startswith("cuda-toolkit")]
    major = re.search(r"==(\d+)\.", toolkit).group(1)
    image = re.search(r"ARG CUDA_IMAGE=nvidia/cuda:(\d+)\.", _read("dockerfile", "Dockerfile")).group(1)
    assert image == major == "13"


def test_the_driver_floor_the_doctor_enforces_opens_the_gpu_section_and_the_dockerfile():
    assert doctor.DRIVER_FLOOR in gpu_section().split("\n\n")[1]
    header = _read("dockerfile", "Dockerfile").split("\nARG ")[0]
    assert doctor.DRIVER_FLOOR in header
    assert "to match another driver" not in header  # an older base image does not help an older driver


def test_the_readme_shows_the_hugging_face_cache_mount_for_the_image():
    assert "-v $HOME/.cache/huggingface:/root/.cache/huggingface" in gpu_section()
    assert "HF_HOME=/root/.cache/huggingface" in _read("dockerfile", "Dockerfile")
