"""``synapse-dagster doctor``'s checks that need no Dagster: each returns plain :class:`~.checks.Check` values.

The CLI (``synapse_dagster/cli/doctor.py``) runs them in order, adds the ones that need the pipeline file's models
or a Dagster instance, and prints one line per check.
"""
