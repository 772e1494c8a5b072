"""``python -m synapse_dagster.cli``: the same as the ``synapse-dagster`` command."""

import sys

from synapse_dagster.cli.main import main

sys.exit(main())
