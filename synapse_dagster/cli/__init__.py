"""The ``synapse-dagster`` command line (:mod:`.main`), its batch runs (:mod:`.runs`) and its report (:mod:`.report`)."""
