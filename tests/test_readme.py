"""The README as someone new reads it: every line of its ```bash blocks is a command that runs as
written, its sections appear once, and `.ci/run` runs its test command.

A bash line must parse (`bash -n`), be a plain command or `&&`-chain of them (a synopsis such as
`a|b|c` would be a pipe), and start with a program the two commands give: `pip` installing this
checkout with extras it declares, `python3` running a module or script that exists, or
`curvebench` with subcommands, options and values the CLI accepts — click parses each line as
the command would, and nothing runs. Forms with placeholders belong in plain text blocks.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import tomllib

import pytest
import typer

from harness.cli import app
from tests.conftest import REPO

README = (REPO / "README.md").read_text()
EXTRAS = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
CLI = typer.main.get_command(app)
#: click's UsageError as the CLI raises it (typer may carry its own copy of click)
UsageError = typer.BadParameter.__mro__[1]


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)


def bash_lines(block: str) -> list[str]:
    """The block's commands: continuation lines joined, blank and comment-only lines dropped."""
    joined = re.sub(r"\\\n", " ", block)
    return [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def simple_commands(line: str) -> list[list[str]]:
    """The words of each command of an `&&` chain (comments dropped); any other operator
    (a pipe, `;`, a redirection, `||`) is refused."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token == "&&":
            commands.append([])
        elif token and set(token) <= set("();<>|&"):
            raise AssertionError(f"{line!r}: {token!r} is not a plain command (a synopsis? put it "
                                 "in a text block)")
        else:
            commands[-1].append(token)
    assert all(commands), f"{line!r}: an empty command"
    return commands


def parse_cli(words: list[str]) -> None:
    """Parse `curvebench` arguments as the CLI does, down to the subcommand, without running it:
    click raises a UsageError for an unknown command or option, a bad value or an extra argument."""
    command, name, args = CLI, "curvebench", list(words)
    while hasattr(command, "commands") and args and args[0] in command.commands:
        name, command, args = args[0], command.commands[args[0]], args[1:]
    try:
        ctx = command.make_context(name, args)
    except UsageError as e:
        raise AssertionError(f"curvebench {' '.join(words)}: {e.format_message()}") from None
    if hasattr(command, "commands"):
        left = [*ctx.args, *getattr(ctx, "_protected_args", [])]
        assert not left, f"curvebench {name}: no subcommand {left[0]!r}"


def check_pip(words: list[str]) -> None:
    assert words[:2] == ["pip", "install"], f"{words}: only `pip install` of this checkout"
    args = words[2:]
    targets = [a for a in args if a.startswith(".")]
    assert targets and args[args.index(targets[0]) - 1] == "-e", f"{words}: install the checkout with -e"
    for target in targets:
        match = re.fullmatch(r"\.(?:\[([a-z0-9_,-]+)\])?", target)
        assert match, f"{words}: {target!r} is not the checkout"
        assert set((match.group(1) or "").split(",")) - {""} <= EXTRAS, f"{words}: unknown extra"


def check_python(words: list[str]) -> None:
    if words[1] == "-m":
        assert importlib.util.find_spec(words[2]), f"{words}: no module {words[2]}"
    else:
        assert (REPO / words[1]).is_file(), f"{words}: no script {words[1]}"


CHECKS = {"pip": check_pip, "python3": check_python, "curvebench": lambda w: parse_cli(w[1:])}
LINES = [line for block in bash_blocks(README) for line in bash_lines(block)]


def test_every_bash_block_parses():
    blocks = bash_blocks(README)
    assert len(blocks) >= 3
    for block in blocks:
        result = subprocess.run(["bash", "-n"], input=block, text=True, capture_output=True)
        assert result.returncode == 0, f"{block}\n{result.stderr}"


@pytest.mark.parametrize("line", LINES)
def test_every_bash_line_is_a_command_that_runs_as_written(line, monkeypatch):
    monkeypatch.chdir(REPO)  # paths in the README are relative to the checkout
    for words in simple_commands(line):
        assert words[0] in CHECKS, f"{line!r}: {words[0]!r} is not a program the README installs"
        CHECKS[words[0]](words)


@pytest.mark.parametrize("line", [
    "curvebench analyze catapult|ablation|quadratic --tiny",
    "curvebench runs [--workload W] [--submission S]",
    "curvebench sweep ... --mlflow sqlite:///mlflow.db",
    "curvebench run --workload mnist_mlp --submision adam",
    "curvebench run --workload mnist_mlp --seeds three",
    "curvebench runz",
    "pip install -e '.[nonexistent]'",
    "python3 benchmarks/no_such_script.py",
])
def test_a_synopsis_or_a_typo_is_refused(line, monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(AssertionError):
        test_every_bash_line_is_a_command_that_runs_as_written(line, monkeypatch)


def test_the_two_commands_and_ci_runs_the_test_command():
    two = re.search(r"^## Two commands\n(.*?)^## ", README, flags=re.S | re.M).group(1)
    assert [b.strip() for b in bash_blocks(two)] == [
        "pip install -e . && curvebench score adam", 'pip install -e ".[dev]" && python3 -m pytest']
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith("#")]
    assert ci[-1] == bash_blocks(two)[1].strip()


def test_no_section_twice():
    headings = re.findall(r"^#+ .*$", re.sub(r"^```.*?^```", "", README, flags=re.S | re.M),
                          flags=re.M)
    assert len(headings) == len(set(headings)), sorted(h for h in headings if headings.count(h) > 1)
    assert "## Measured" in headings and "## Layout" in headings
