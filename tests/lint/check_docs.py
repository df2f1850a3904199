"""Docs that cannot rot: every link, command, make target and script option in README.md and docs/*.md is checked.

    python tests/lint/check_docs.py [--root DIR] [--cli CMD] [FILE.md ...]

Fails with one line per problem, `FILE:LINE: what is wrong`, when
- a relative link does not resolve: the file is missing, or its `#anchor` matches no heading of the target file
  (GitHub's slugs: lower case, punctuation dropped, spaces to hyphens, `-1`, `-2` for repeats);
- an `openrlhf-cfpo` sub-command (or its own sub-command, `eval gsm8k`) or flag is not in that command's `--help`;
- a `make TARGET` is not a target of the Makefile;
- an option of `train_scripts/NAME.sh` or `eval/run_suite.sh` is not in that script's `--help` (flags after a bare
  `--` belong to the framework and are not checked).
Commands are read from fenced code blocks and from inline code spans. Each `--help` runs once (make lint: ~20 s).
"""

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^\s*(```|~~~)\s*([\w+-]*)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
SEGMENT_SPLIT = re.compile(r"&&|\|\||;|\s\|\s|\$\(|`")
SCRIPT = re.compile(r"^(?:\./)?(train_scripts/[\w.-]+\.sh|eval/run_suite\.sh)$")
PLACEHOLDER = re.compile(r"[A-Z_]+|<.*>|\.\.\.")  # TARGET, NAME, <cmd>, ...: stand for something, not checked
FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w.-]*)")
# Help texts that hand the flags they do not know on to another parser, and the command whose --help lists those.
PASSES_ON = [
    (re.compile(r"Other flags go to every `(\w+)` run"), lambda m: (m[1],)),
    (re.compile(r"ANY OPENRLHF FLAG"), lambda m: ("train-ppo-ray",)),
]
NOT_SHELL = {"python", "py", "json", "yaml", "yml", "toml", "jsonl", "diff", "dockerfile"}


def slug(heading: str) -> str:
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def read_markdown(path: Path):
    """(line number, text, fence language or None) for each line; fence lines themselves are dropped."""
    lines, lang = [], None
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = FENCE.match(text)
        if fence:
            lang = None if lang is not None else fence[2].lower()
            continue
        lines.append((number, text, lang))
    return lines


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for _, text, lang in read_markdown(path):
        if lang is not None:
            continue
        found.update(HTML_ANCHOR.findall(text))
        heading = HEADING.match(text)
        if heading:
            base = slug(heading[2])
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def help_flags(text: str) -> set[str]:
    return {flag.rstrip(".") for flag in FLAG.findall(text)}


class Checker:
    def __init__(self, root: Path, cli: list[str]):
        self.root, self.cli = root, cli
        self.helps: dict[tuple, str | None] = {}
        self.help_errors: dict[tuple, str] = {}
        self.anchor_cache: dict[Path, set[str]] = {}
        self.targets = self.make_targets()
        self.problems: list[str] = []

    def make_targets(self) -> set[str]:
        makefile = self.root / "Makefile"
        targets = set()
        for line in makefile.read_text().splitlines() if makefile.exists() else []:
            rule = re.match(r"^([^\s#:=][^:=#]*?)\s*::?(?!=)", line)
            if rule:
                targets.update(rule[1].split())
        return targets

    def help_text(self, argv: tuple, where: str) -> str | None:
        """The --help text of a command, once per run; None, and a problem line, if it fails."""
        if argv not in self.helps:
            try:
                done = subprocess.run(
                    [*argv, "--help"],
                    cwd=self.root,
                    capture_output=True,
                    text=True,
                    timeout=180,
                    stdin=subprocess.DEVNULL,
                )
                failed = done.returncode != 0 or not done.stdout.strip()
                why = (done.stderr.strip().splitlines() or ["no output"])[-1] if failed else ""
            except (OSError, subprocess.TimeoutExpired) as error:
                failed, why = True, str(error)
            self.helps[argv] = None if failed else done.stdout
            self.help_errors[argv] = why
        if self.helps[argv] is None:
            shown = " ".join(argv).replace(" ".join(self.cli), "openrlhf-cfpo", 1)
            self.report(where, f"`{shown} --help` failed, so its flags go unchecked: {self.help_errors[argv]}")
        return self.helps[argv]

    def report(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    # links -----------------------------------------------------------------------------------------------------
    def check_links(self, path: Path, where: str, text: str) -> None:
        for target in LINK.findall(text) + REF_LINK.findall(text):
            if re.match(r"^[a-zA-Z][\w+.-]*:", target):  # https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            target_path = (path.parent / unquote(file_part)).resolve() if file_part else path
            if not target_path.exists():
                self.report(where, f"link {target!r}: no such file {file_part!r}")
            elif anchor and target_path.suffix == ".md":
                if target_path not in self.anchor_cache:
                    self.anchor_cache[target_path] = anchors(target_path)
                if unquote(anchor) not in self.anchor_cache[target_path]:
                    self.report(where, f"link {target!r}: no heading in {target_path.name} has the anchor #{anchor}")

    # commands --------------------------------------------------------------------------------------------------
    def check_commands(self, where: str, code: str) -> None:
        code = re.sub(r"(^|\s)#.*$", "", code)  # a shell comment
        for segment in SEGMENT_SPLIT.split(code):
            try:
                words = shlex.split(segment)
            except ValueError:
                words = segment.split()
            words = [w.strip("[]") for w in words]
            while words and re.match(r"^[A-Za-z_]\w*=", words[0]):  # VAR=value before the command
                words.pop(0)
            if not words:
                continue
            if Path(words[0]).name == "openrlhf-cfpo":
                self.check_cli(where, words[1:])
            elif words[0] == "make":
                for word in words[1:]:
                    if word.startswith("-") or "=" in word or PLACEHOLDER.fullmatch(word):
                        continue
                    if word not in self.targets:
                        self.report(where, f"make {word}: no such target in the Makefile")
            for i, word in enumerate(words):
                script = SCRIPT.match(word)
                if script and not PLACEHOLDER.fullmatch(Path(script[1]).stem):
                    self.check_script(where, script[1], words[i + 1 :])
                    break

    def check_flags(self, where: str, shown: str, words: list[str], text: str) -> None:
        """Each flag before a bare `--` must be in the help text, or in the help of the parser it passes flags on to."""
        accepted = help_flags(text) | {"-h", "--help"}
        for word in words:
            if word == "--":
                return
            name = word.split("=", 1)[0]
            if FLAG.fullmatch(name) and name not in accepted and name not in self.passed_on(text, where):
                self.report(where, f"{shown}: {name} is not an option of its --help")

    def passed_on(self, text: str, where: str) -> set[str]:
        """The flags of the parser a help text hands unknown flags on to (asked only for a flag not found first)."""
        flags = set()
        for pattern, command in PASSES_ON:
            match = pattern.search(text)
            if match:
                flags |= help_flags(self.help_text((*self.cli, *command(match)), where) or "")
        return flags

    def check_cli(self, where: str, words: list[str]) -> None:
        path: list[str] = []
        text = self.help_text(tuple(self.cli), where)
        if text is None:
            return
        rest = list(words)
        while True:
            subcommands = self.subcommands(text, top=not path)
            i = next((k for k, w in enumerate(rest) if not w.startswith("-")), None)
            if not subcommands or i is None or PLACEHOLDER.fullmatch(rest[i]):
                break
            choices = rest[i].split("|")
            unknown = [c for c in choices if c not in subcommands]
            if unknown:
                shown = " ".join(["openrlhf-cfpo", *path, unknown[0]])
                return self.report(where, f"{shown}: no such sub-command (its --help lists {', '.join(subcommands)})")
            self.check_flags(where, " ".join(["openrlhf-cfpo", *path]), rest[:i], text)
            path.append(choices[0])
            rest = rest[i + 1 :]
            if not rest:  # nothing more to check: its --help is not needed
                return
            text = self.help_text((*self.cli, *path), where)
            if text is None:
                return
        shown = " ".join(["openrlhf-cfpo", *path])
        self.check_flags(where, shown, rest, text)

    @staticmethod
    def subcommands(text: str, top: bool) -> list[str]:
        if top:  # openrlhf-cfpo --help: "commands:" then one "  name  what" line each
            block = text.split("commands:", 1)[1] if "commands:" in text else ""
            return re.findall(r"^  (\S+)\s", block, flags=re.M)
        usage = text.split("\n\n", 1)[0]
        choice = re.search(r"(?<![\[\w])\{([\w,-]+)\}\s+\.\.\.", usage)
        return choice[1].split(",") if choice else []

    def check_script(self, where: str, script: str, words: list[str]) -> None:
        if not (self.root / script).is_file():
            return self.report(where, f"{script}: no such script")
        text = self.help_text(("bash", script), where)
        if text is None:
            return
        self.check_flags(where, script, words, text)

    # files -----------------------------------------------------------------------------------------------------
    def check_file(self, path: Path) -> None:
        shown = path.relative_to(self.root) if path.is_relative_to(self.root) else path
        lines = read_markdown(path)
        k = 0
        while k < len(lines):
            number, text, lang = lines[k]
            where = f"{shown}:{number}"
            if lang is None:
                self.check_links(path, where, CODE_SPAN.sub("", text))
                for _, span in CODE_SPAN.findall(text):
                    self.check_commands(where, span.strip())
            elif lang not in NOT_SHELL:
                while text.rstrip().endswith("\\") and k + 1 < len(lines) and lines[k + 1][2] is not None:
                    k += 1
                    text = text.rstrip()[:-1] + " " + lines[k][1]
                self.check_commands(where, text)
            k += 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="Markdown files (default: README.md and docs/**/*.md)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository: Makefile, scripts, where commands run")
    parser.add_argument("--cli", default=f"{sys.executable} -m openrlhf_cfpo.cli.main", help="how to run openrlhf-cfpo")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    files = [f.resolve() for f in args.files] or [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    checker = Checker(root, shlex.split(args.cli))
    for path in files:
        if not path.is_file():
            checker.report(str(path), "no such file")
            continue
        checker.check_file(path)
    print("\n".join(checker.problems), end="\n" if checker.problems else "")
    return 1 if checker.problems else 0


if __name__ == "__main__":
    sys.exit(main())
