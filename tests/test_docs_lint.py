"""tests/lint/check_docs.py: each of its four checks catches a broken doc, and the real README.md and docs/ pass."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKER = ROOT / "tests" / "lint" / "check_docs.py"


def check(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(CHECKER), "--root", str(ROOT), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def docs(tmp_path):
    """A docs folder of two pages: page.md links to other.md, whose headings give the anchors."""
    (tmp_path / "other.md").write_text("# Other page\n\n## The weight-sync check's cost\n\ntext\n")

    def page(body: str) -> Path:
        path = tmp_path.resolve() / "page.md"
        path.write_text("# Page\n\n" + body)
        return path

    return page


def problems(result: subprocess.CompletedProcess, page: Path) -> list[str]:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith(f"{page}:") for line in lines), lines
    return lines


def test_a_link_to_a_missing_file_or_heading_is_one_line_each(docs):
    page = docs(
        "[ok](other.md#the-weight-sync-checks-cost) and [ok](#page)\n"
        "[gone](missing.md)\n"
        "[renamed](other.md#the-weight-sync-check-cost)\n"
        "`[not a link](missing.md)` and [web](https://example.com/x.md)\n"
    )
    lines = problems(check(page), page)
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"{page}:4: ") and "missing.md" in lines[0]
    assert lines[1].startswith(f"{page}:5: ") and "#the-weight-sync-check-cost" in lines[1]


def test_a_renamed_cli_flag_or_sub_command_is_caught(docs):
    page = docs(
        "```bash\n"
        "openrlhf-cfpo sweep --output runs/sweep --iterations 1,4 --actor.adam.lr 1e-6   # local's flag, passed on\n"
        "openrlhf-cfpo sweep --output runs/sweep --iteration 1,4\n"
        "openrlhf-cfpo eval gsm8k --backend vllm --model M --output D -- --anything\n"
        "openrlhf-cfpo eval gsm8 --model M\n"
        "openrlhf-cfpo evaluate\n"
        "```\n"
    )
    lines = problems(check(page), page)
    assert [line.split(": ", 1)[0] for line in lines] == [f"{page}:{n}" for n in (5, 7, 8)], lines
    assert "--iteration " in lines[0] and "gsm8" in lines[1] and "evaluate" in lines[2]


def test_a_make_target_missing_from_the_makefile_is_caught(docs):
    page = docs(
        "Run `make compare` and `make test`, then `make comparison`.\n\n```bash\nmake lint OUTPUT=x bench\n```\n"
    )
    lines = problems(check(page), page)
    assert len(lines) == 1 and lines[0].startswith(f"{page}:3: ") and "make comparison" in lines[0], lines


def test_an_option_a_train_script_does_not_take_is_caught_but_not_after_a_bare_double_dash(docs):
    page = docs(
        "```bash\n"
        "bash train_scripts/cfpo_qwen25_math_trl.sh --model-size 3B --iterations 8 -- --any_trl_flag 1\n"
        "PYTHON=python bash train_scripts/cfpo_qwen25_math_verl.sh --iteration 4\n"
        "bash eval/run_suite.sh CKPT --reasoning --baseline-model B\n"
        "bash train_scripts/no_such_recipe.sh\n"
        "```\n"
    )
    lines = problems(check(page), page)
    assert [line.split(": ", 1)[0] for line in lines] == [f"{page}:{n}" for n in (5, 6, 7)], lines
    assert "--iteration " in lines[0] and "--baseline-model" in lines[1] and "no such script" in lines[2]


def test_the_real_readme_and_docs_pass():
    result = check()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
