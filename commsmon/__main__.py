"""``python -m commsmon`` runs the command-line interface."""

import sys

from commsmon.cli.commands import main

sys.exit(main())
