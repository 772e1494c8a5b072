"""The ``synapse-dagster`` command line (:mod:`.main`), its batch runs (:mod:`.runs`) and its report (:mod:`.report`).

The command is a short-lived process that imports Dagster (tens of thousands of objects) and then runs one batch.
With CPython's default collector thresholds (700 allocations), the cyclic collector walks that growing heap again
and again while it is built: about a quarter of the import's CPU (3.8 s → 2.8 s for the CLI's imports, measured
on the 2-core machine). A run allocates more than it frees in cycles, so collecting less often costs little
memory; :func:`.main.main` also freezes what the imports built, which no collection needs to walk again.
"""

import gc

gc.set_threshold(50_000, 50, 1_000)
