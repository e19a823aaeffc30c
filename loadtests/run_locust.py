"""Start Locust with the gevent patching our clients need: ``python loadtests/run_locust.py``.

Takes exactly Locust's command line. ``import locust`` runs ``gevent.monkey.patch_all()``,
which turns every ``threading.Thread`` into a greenlet. Most of our backend clients run
their own threads and block in C: the SQLite batch writers (a write would stall the whole
process) and confluent-kafka's delivery thread (its ``poll`` loop never yields, so the
process would hang). For those, this launcher patches everything *except* threads
(sockets, ``time.sleep``, ``select``: Locust's master and workers need them) before
Locust starts, so the clients' threads stay real OS threads, as in the workbench.

kafka-python is the exception: its network I/O thread shares gevent-patched sockets with
the caller, which only works when its threads are greenlets too, so for
``KafkaPythonUser`` the launcher lets Locust patch everything, as usual.

``SQLITEQUEUE_LOCUST_THREADS=native|greenlet`` overrides the choice.
"""

import os
import sys

from gevent import monkey

GREENLET_USERS = ("KafkaPythonUser", "GatewayKafkaPythonUser")
mode = os.environ.get("SQLITEQUEUE_LOCUST_THREADS") or (
    "greenlet" if any(arg in GREENLET_USERS for arg in sys.argv[1:]) else "native"
)
os.environ["SQLITEQUEUE_LOCUST_THREADS"] = mode
if mode == "native":
    monkey.patch_all(thread=False)
    os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"  # patched already, without threads

from locust.main import main  # noqa: E402 - after choosing the patching

if __name__ == "__main__":
    sys.exit(main())
