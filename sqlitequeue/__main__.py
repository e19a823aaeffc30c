"""``python -m sqlitequeue`` runs the command line."""

import sys

from sqlitequeue.cli import main

sys.exit(main())
