"""The Ray cluster resource of ``engine: ray`` pipelines (imported only when a pipeline asks for Ray).

dagster-ray's ``LocalRay`` connects to ``RAY_ADDRESS`` (or starts a local Ray when it is unset) and owns the
connection's lifecycle. Its ``connect`` also applies Ray Data settings on the driver and on a worker, which
imports ``ray.data`` and so needs pandas and pyarrow; delivery uses plain Ray tasks, so this connects without
them.
"""

from __future__ import annotations

from typing import Any

from dagster_ray import LocalRay


class RayCluster(LocalRay):
    def connect(self, context: Any) -> Any:
        import ray

        self._context = ray.init(address=self.ray_address, **self.ray_init_options)
        return self._context
