"""The pipeline file: its models (:mod:`.models`) and how it is read (:mod:`.loading`)."""
