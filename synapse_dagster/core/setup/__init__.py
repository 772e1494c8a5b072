"""What ``synapse-dagster init`` asks Synapse and the source, as plain data: no prompts, no Dagster."""
