"""The docs tell the truth: README.md and docs/*.md name only what exists, and render their figures.

* every CLI command is in README.md, and the two commands come first;
* every ``sqlitequeue ...`` command and every option that README.md, docs/*.md or the CLI's
  own help texts name exists in the real parser (an option named alone in prose belongs to
  the paragraph's command, else to any command, the locustfile, or another tool named here);
* every marked block of figures is rendered from the committed reference runs
  (``tools/render_docs.py``);
* every ``sqlitequeue/...`` path and ``sqlitequeue.x.y`` name they mention exists;
* README.md's architecture map names existing paths, and every package and top module.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from sqlitequeue.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README = DOCS[0].read_text()

#: Options of other programs that the docs name in prose, and whose they are.
OTHER_TOOLS = {
    "--processes": "Locust",
    "--master": "Locust",
    "--worker": "Locust",
    "--standalone": "Kafka's StorageTool",
}
#: Fenced blocks in these languages hold no shell commands.
NOT_SHELL = {"python", "py", "yaml", "yml", "json", "sql", "toml", "ini", "text"}  # text: output
#: ``make`` targets that pass their ARGS to a command.
MAKE_TARGETS = {"compare": ["bench", "compare"], "quick": ["bench", "compare"]}
STOP = {"|", "||", "&&", ";", ">", ">>", "2>", "<"}
LONG = re.compile(r"--[a-z0-9][a-z0-9-]*")
SHORT = re.compile(r"-[a-zA-Z]")


def _commands(parser: argparse.ArgumentParser, prefix: str = "sqlitequeue") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(f"{prefix} {name}")
                found.extend(_commands(sub, f"{prefix} {name}"))
    return found


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for name, sub in _subcommands(parser).items():
        yield from _parsers(sub, (*path, name))


PARSER = build_parser()
ALL_OPTIONS = {opt for _, p in _parsers(PARSER) for opt in p._option_string_actions}
LOCUSTFILE_OPTIONS = set(
    re.findall(r'add_argument\(\s*"(--[a-z-]+)"', (ROOT / "loadtests/locustfile.py").read_text())
)


# -- finding commands and options in Markdown ------------------------------------------------


class Snippet(NamedTuple):
    """A piece of code text: a fenced line (continuations joined) or an inline code span."""

    line: int
    text: str
    fenced: bool


def _paragraphs(text: str) -> Iterator[list[Snippet]]:
    """Code snippets grouped by paragraph: a prose paragraph, table row or list item, or one
    line of a fenced (or indented) shell block."""
    prose: list[tuple[int, str]] = []
    fence: str | None = None
    pending, start = "", 0

    def flush() -> Iterator[list[Snippet]]:
        if prose:
            joined = "\n".join(line for _, line in prose)
            first = prose[0][0]
            spans = [
                Snippet(first + joined.count("\n", 0, m.start()), m.group(1), False)
                for m in re.finditer(r"`([^`]+)`", joined)
            ]
            prose.clear()
            yield spans

    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        opening = re.match(r"\s*```(\w*)", line)
        if opening:
            yield from flush()
            fence = None if fence is not None else opening.group(1)
            continue
        indented = fence is None and line.startswith("    ") and not prose
        if fence is not None or indented:
            if fence in NOT_SHELL:
                continue
            start = start or number
            pending += line.rstrip().removesuffix("\\") + " "
            if not line.rstrip().endswith("\\"):
                yield [Snippet(start, pending, True)]
                pending, start = "", 0
            continue
        if not line.strip() or re.match(r"\s*(\||[*-] |\d+\. |#)", line):
            yield from flush()
        if line.strip():
            prose.append((number, line))
    yield from flush()


def _clean(token: str) -> str:
    return token.strip("[]\"'(),.:;…").split("=")[0]


def _command_at(tokens: list[str]) -> tuple[list[str], list[str], str | None]:
    """(command path, options, an unknown sub-command) of the tokens after ``sqlitequeue``."""
    parser, path, options, unknown = PARSER, [], [], None
    for raw in tokens:
        if raw.startswith("#") or raw in STOP:
            break
        token = _clean(raw)
        subs = _subcommands(parser)
        if not options and token in subs:
            parser, path = subs[token], [*path, token]
        elif not options and subs and re.fullmatch(r"[a-z][a-z-]+", token) and unknown is None:
            unknown = token
        elif LONG.fullmatch(token) or SHORT.fullmatch(token):
            options.append(token)
        if raw.endswith((")", ')"', ";")):
            break
    return path, options, unknown


def _find_command(snippet: str) -> tuple[list[str], list[str], str | None] | None:
    """The first ``sqlitequeue`` command line in ``snippet`` (also ``make compare ARGS=...``
    and a span that starts with a command's name, such as ``bench faults --quick``)."""
    tokens = snippet.split()
    for i, raw in enumerate(tokens):
        word = raw.lstrip("\"'$(`")
        previous = tokens[i - 1] if i else ""
        if (word == "sqlitequeue" or word.endswith("/sqlitequeue")) and previous not in (
            "from",
            "import",
        ):
            return _command_at(tokens[i + 1 :])
        if word == "make" and i + 1 < len(tokens) and tokens[i + 1] in MAKE_TARGETS:
            path = MAKE_TARGETS[tokens[i + 1]]
            args = " ".join(tokens[i + 2 :]).replace("ARGS=", "").replace('"', " ")
            return path, _command_at([*path, *args.split()])[1], None
    if len(tokens) > 1 and tokens[0] in _subcommands(PARSER):
        return _command_at(tokens)
    return None


def _options_of(path: list[str]) -> set[str]:
    parser = PARSER
    for name in path:
        parser = _subcommands(parser)[name]
    return set(parser._option_string_actions)


def _check_paragraph(snippets: list[Snippet], where: str) -> list[str]:
    """Problems with the commands and options one paragraph names."""
    problems: list[str] = []
    scope: list[str] | None = None
    for snippet in snippets:
        found = _find_command(snippet.text)
        at = f"{where}:{snippet.line}"
        if found is not None:
            path, options, unknown = found
            name = " ".join(["sqlitequeue", *path])
            if unknown is not None:
                problems.append(f"{at} names `{name} {unknown}`: no such command")
            problems += [
                f"{at} names `{name} {opt}`: `{name}` has no option {opt}"
                for opt in options
                if opt not in _options_of(path)
            ]
            if "sqlitequeue" in snippet.text:
                scope = path  # a full command line: the options named after it are its own
            continue
        if snippet.fenced or not snippet.text.startswith("-"):
            continue  # another program's command line (`kcat -C`), or output
        for token in map(_clean, snippet.text.split()):
            if scope is not None and (LONG.fullmatch(token) or SHORT.fullmatch(token)):
                if token not in _options_of(scope) and token not in OTHER_TOOLS:
                    name = " ".join(["sqlitequeue", *scope])
                    problems.append(f"{at} names {token} for `{name}`, which has no such option")
            elif (
                scope is None
                and LONG.fullmatch(token)
                and token not in ALL_OPTIONS | LOCUSTFILE_OPTIONS | set(OTHER_TOOLS)
            ):
                problems.append(f"{at} names {token}: no command or tool has that option")
    return problems


def _doc_problems(path: Path) -> list[str]:
    where = str(path.relative_to(ROOT))
    return [p for para in _paragraphs(path.read_text()) for p in _check_paragraph(para, where)]


def test_every_cli_command_is_in_the_readme() -> None:
    missing = [c for c in _commands(PARSER) if f"`{c}" not in README]
    assert not missing, f"commands missing from README.md: {missing}"


def test_every_command_and_option_the_docs_name_exists() -> None:
    problems = [p for doc in DOCS for p in _doc_problems(doc)]
    assert not problems, "\n".join(problems)


def test_every_command_and_option_the_help_texts_name_exists() -> None:
    problems = []
    for path, parser in _parsers(PARSER):
        texts = [parser.description or "", parser.epilog or ""]
        texts += [action.help or "" for action in parser._actions]
        where = f"`{' '.join(['sqlitequeue', *path, '--help'])}`"
        for text in texts:
            spans = [Snippet(0, m.group(1), False) for m in re.finditer(r"`([^`]+)`", text)]
            examples = [
                Snippet(0, line, True)
                for line in text.splitlines()
                if line.strip().startswith("sqlitequeue ")
            ]
            for snippet in spans + examples:
                problems += [
                    p.replace(f"{where}:0", where)
                    for p in _check_paragraph([snippet], where)
                    if _find_command(snippet.text) is not None
                ]
    assert not problems, "\n".join(problems)


def test_the_checker_finds_a_dangling_command_and_option() -> None:
    text = (
        "Run `sqlitequeue bench list --profiles`, then `sqlitequeue bench lst`;\n"
        "`sqlitequeue get FILE` takes `--no-ack` and `--nope`.\n\n"
        "```bash\nsqlitequeue kafka start \\\n"
        "    --brokers 3 --heap 1G --bad  # a comment --x\n```\n"
    )
    problems = [p for para in _paragraphs(text) for p in _check_paragraph(para, "doc.md")]
    assert problems == [
        "doc.md:1 names `sqlitequeue bench list --profiles`: "
        "`sqlitequeue bench list` has no option --profiles",
        "doc.md:1 names `sqlitequeue bench lst`: no such command",
        "doc.md:2 names --nope for `sqlitequeue get`, which has no such option",
        "doc.md:5 names `sqlitequeue kafka start --bad`: "
        "`sqlitequeue kafka start` has no option --bad",
    ]


def test_readme_starts_with_the_two_commands() -> None:
    head = README[: README.index("make test") + 200]
    assert "make compare" in head
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci.strip().splitlines()[-1]


def test_docs_figures_come_from_the_committed_reference_runs() -> None:
    from tools import render_docs

    assert not render_docs.stale_blocks(), "run: python tools/render_docs.py"


# -- paths and module names ------------------------------------------------------------------


def _exists(name: str, *bases: Path) -> bool:
    """Whether ``name`` (a path, perhaps with ``*``, or a module path without ``.py``) exists."""
    for base in bases or (ROOT,):
        candidate = base / name.rstrip("/")
        if "*" in name and list(base.glob(name)):
            return True
        if candidate.exists() or candidate.with_suffix(".py").exists():
            return True
    return False


def test_every_package_path_the_docs_name_exists() -> None:
    missing = [
        f"{doc.relative_to(ROOT)} names {name}, which does not exist"
        for doc in DOCS
        for name in re.findall(r"(?<![\w.-])sqlitequeue/[\w./*-]*", doc.read_text())
        if not _exists(name.rstrip("."))
    ]
    assert not missing, "\n".join(missing)


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(obj, attribute):
                return False
            obj = getattr(obj, attribute)
        return True
    return False


def test_every_module_name_the_docs_name_exists() -> None:
    missing = []
    for doc in DOCS:
        text = doc.read_text()
        names = set(re.findall(r"(?<![\w/])sqlitequeue(?:\.[A-Za-z_]\w*)+", text))
        for module, imported in re.findall(r"from (sqlitequeue[\w.]*) import ([\w, ]+)", text):
            names.update(f"{module}.{name.strip()}" for name in imported.split(","))
        missing += [
            f"{doc.relative_to(ROOT)} names {name}, which does not exist"
            for name in sorted(names)
            if not _resolves(name)
        ]
    assert not missing, "\n".join(missing)


def _architecture_map() -> str:
    return README.split("## Architecture map", 1)[1].split("\n## ", 1)[0]


def test_the_architecture_map_names_only_what_exists() -> None:
    names = [
        n
        for n in re.findall(r"`([\w./*-]+)`", _architecture_map())
        if "/" in n or n.endswith(".py")
    ]
    bases = (ROOT, ROOT / "sqlitequeue", ROOT / "sqlitequeue" / "bench")
    missing = [n for n in names if not _exists(n, *bases)]
    assert names and not missing, f"README.md's architecture map names missing paths: {missing}"


def test_the_architecture_map_names_every_package_and_top_module() -> None:
    named = [n.rstrip("/") for n in re.findall(r"`(sqlitequeue/[\w./*-]+)`", _architecture_map())]
    core = ROOT / "sqlitequeue"
    packages = [p.parent for p in core.rglob("__init__.py") if p.parent != core]
    modules = [*core.glob("*.py"), *(core / "bench").glob("*.py")]
    wanted = [
        str(p.relative_to(ROOT))
        for p in [*packages, *modules]
        if p.name not in ("__init__.py", "__main__.py")
    ]
    left_out = [
        w
        for w in wanted
        if not any(w == n or fnmatch.fnmatch(w, n) or w.startswith(f"{n}/") for n in named)
    ]
    assert not left_out, f"README.md's architecture map leaves out: {sorted(left_out)}"


def test_the_gateway_reference_block_reads_a_results_folder(tmp_path: Path) -> None:
    from sqlitequeue.bench.results import RunWriter
    from tools import render_docs

    figures = {"sqlite-stream": 0.5, "gateway-confluent": 2.0, "kafka-confluent": 4.0}
    with RunWriter(tmp_path, "reference-gateway", kind="bench") as w:
        w.metadata(
            backend_order=list(figures),
            command=["sqlitequeue", "bench", "compare"],
            created="2026-01-01T00:00:00+00:00",
            finished="2026-01-01T00:05:00+00:00",
        )
        for backend, p50 in figures.items():
            w.metric(backend, "steady-1kb", "e2e_latency_ms.p50", p50)
            w.metric(backend, "steady-1kb", "e2e_latency_ms.p99", p50 * 3)
            w.metric(backend, "steady-1kb", "publish_latency_ms.p50", p50 / 2)
            w.metric(backend, "steady-1kb", "publish_latency_ms.p99", p50)
    block = render_docs.reference_gateway(tmp_path)
    assert block.startswith("**Unchanged Kafka clients on the file** (`sqlitequeue bench compare`)")
    assert "| steady-1kb | gateway-confluent | 1.00 ms | 2.00 ms | 2.00 ms | 6.00 ms |" in block
    assert "max sustainable rate" not in block  # no max-rate search ran
    assert "make reference" in render_docs.reference_gateway(tmp_path / "none")
