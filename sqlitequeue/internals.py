"""The one seam through which sqlitequeue's own workbench reaches the core's internals.

Not a public API: no stability promise beyond this repository. The workbench
(:mod:`sqlitequeue.bench`) imports the core's private modules only through here, so the
list below is everything it depends on besides ``Queue``, ``Stream`` and the errors:

* :class:`Database` - a connection to a sqlitequeue file with its pragmas, schema and write
  retry (the sqlite-queue backend keeps a side table in the same file; the micro-benchmark's
  raw loops open files the library created);
* :data:`DURABILITY` - durability name -> ``PRAGMA synchronous`` value;
* :data:`WAIT_MIN_SLEEP`, :data:`WAIT_MAX_SLEEP` - the back-off bounds of the change wait,
  so the raw loop waits the way the library does;
* :mod:`stream_log` - the log's SQL (offset layout, topic creation), so the raw stream loop
  runs the library's statements.
"""

from sqlitequeue import _stream_log as stream_log
from sqlitequeue._db import DURABILITY, WAIT_MAX_SLEEP, WAIT_MIN_SLEEP, Database

__all__ = ["DURABILITY", "WAIT_MAX_SLEEP", "WAIT_MIN_SLEEP", "Database", "stream_log"]
