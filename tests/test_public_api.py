"""The public surface: __all__ tells the truth, and the core imports only the standard library."""

from __future__ import annotations

import subprocess
import sys
import types

import sqlitequeue


def test_all_matches_public_names() -> None:
    public = {
        name
        for name, value in vars(sqlitequeue).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert sorted(sqlitequeue.__all__) == sorted(public | {"__version__"})


def test_every_error_derives_from_queue_error() -> None:
    for name in sqlitequeue.__all__:
        value = getattr(sqlitequeue, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, sqlitequeue.QueueError), name


def test_core_imports_only_the_standard_library() -> None:
    code = (
        "import sys, sqlitequeue, sqlitequeue.cli\n"
        "sqlitequeue.cli.build_parser\n"
        "std = set(sys.stdlib_module_names)\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} - std - {'sqlitequeue'})\n"
        "print(','.join(b for b in bad if not b.startswith('_')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
