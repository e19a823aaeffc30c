"""The README tells the truth: every CLI command is documented, the two commands come first."""

from __future__ import annotations

import argparse
from pathlib import Path

from sqlitequeue.cli import build_parser

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _commands(parser: argparse.ArgumentParser, prefix: str = "sqlitequeue") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(f"{prefix} {name}")
                found.extend(_commands(sub, f"{prefix} {name}"))
    return found


def test_every_cli_command_is_in_the_readme() -> None:
    missing = [c for c in _commands(build_parser()) if f"`{c}" not in README]
    assert not missing, f"commands missing from README.md: {missing}"


def test_readme_starts_with_the_two_commands() -> None:
    head = README[: README.index("make test") + 200]
    assert "make compare" in head
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "make test" in ci.strip().splitlines()[-1]


def test_docs_figures_come_from_the_committed_reference_runs() -> None:
    from tools import render_docs

    assert not render_docs.stale_blocks(), "run: python tools/render_docs.py"
