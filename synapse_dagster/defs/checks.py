"""Every asset check, in one table: which asset it belongs to, whether it blocks, and how it is judged.

Checks run inside their asset's step (so a blocking gate stops the upload in the same run) and are judged from
plain results: the asset's output and its inputs. A new check on any asset is one row here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg

from synapse_dagster.config.models import PipelineConfig
from synapse_dagster.core.deliver.creation import CollisionPolicy, CreationReport, UnitStatus
from synapse_dagster.core.plan.batch_plan import BatchPlan
from synapse_dagster.core.plan.gates import GATES, evaluate_gate
from synapse_dagster.core.synapse.errors import explain_write_refusal

ALL_CREATED_CHECK = "all_valid_units_created"


@dataclass(frozen=True)
class Verdict:
    passed: bool
    severity: dg.AssetCheckSeverity
    description: str
    metadata: Mapping[str, Any]


Judge = Callable[[PipelineConfig, Any, Mapping[str, Any]], Verdict]  # (pipeline, output, inputs)


@dataclass(frozen=True)
class Check:
    name: str
    asset: str
    description: str
    blocking: bool
    judge: Judge


def _gate(name: str) -> Judge:
    def judge(pipeline: PipelineConfig, plan: BatchPlan, inputs: Mapping[str, Any]) -> Verdict:
        gate = evaluate_gate(plan, name, pipeline.max_invalid_fraction)
        failing_softly = not (gate.passed or gate.blocking_failure)
        severity = dg.AssetCheckSeverity.WARN if failing_softly else dg.AssetCheckSeverity.ERROR
        return Verdict(gate.passed, severity, gate.description,
                       {"held_back_units": gate.held_back_count, "units": ", ".join(gate.held_back) or "none"})

    return judge


def _all_created(pipeline: PipelineConfig, report: CreationReport, inputs: Mapping[str, Any]) -> Verdict:
    valid = len(inputs["validated_meta"].valid_units) - len(report.held_back)
    landed = len(report.by_status(UnitStatus.CREATED)) + len(report.by_status(UnitStatus.EXISTING))
    collided = len(report.by_status(UnitStatus.COLLIDED))
    problems = len(report.by_status(UnitStatus.FAILED)) + len(report.skipped)
    missing = f"; {problems} did not make it{_why_missing(pipeline, report)}" if problems else ""
    if collided:  # skipped by policy: reported; with 'fail' the batch is not good
        missing += (f"; {collided} skipped: their dataset_key exists with other content "
                    f"(on_dataset_key_collision: {report.collision_policy})")
        problems += collided if report.collision_policy == CollisionPolicy.FAIL else 0
    held = f"; {len(report.held_back)} held back by the content guard once staged" if report.held_back else ""
    no_task = len(report.tasks.failed) if report.tasks is not None else 0
    tasks = f"; {no_task} have no task in project {pipeline.project} (re-run to retry)" if no_task else ""
    return Verdict(problems == 0 and no_task == 0, dg.AssetCheckSeverity.ERROR,
                   f"{landed} of {valid} valid units exist{missing}{held}{tasks}",
                   {"missing_units": problems, "key_collisions": collided, "held_back_after_staging": len(report.held_back),
                    "units_without_task": no_task})


def _why_missing(pipeline: PipelineConfig, report: CreationReport) -> str:
    """A refused token is the cause to name (a re-run alone would fail the same way); else a re-run retries them."""
    for outcome in report.by_status(UnitStatus.FAILED):
        refusal = explain_write_refusal(outcome.status_code, pipeline.data_collection)
        if refusal:
            return f": {refusal}"
    return " (re-run the batch to retry them)"


CHECKS: tuple[Check, ...] = (
    *(Check(g.name, "validated_meta", g.description, True, _gate(g.name)) for g in GATES),
    Check(ALL_CREATED_CHECK, "created_units", "Every valid unit of the batch exists in the data collection; when one "
          "does not, the run fails (after recording what landed) so a scheduler or a person sees it.", True, _all_created),
)


def check_specs(asset: str, key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(c.name, asset=key, blocking=c.blocking, description=c.description)
            for c in CHECKS if c.asset == asset]


def check_results(pipeline: PipelineConfig, asset: str, key: dg.AssetKey, output: Any,
                  inputs: Mapping[str, Any]) -> list[dg.AssetCheckResult]:
    results = []
    for check in (c for c in CHECKS if c.asset == asset):
        verdict = check.judge(pipeline, output, inputs)
        results.append(dg.AssetCheckResult(check_name=check.name, asset_key=key, passed=verdict.passed,
                                           severity=verdict.severity, description=verdict.description,
                                           metadata=dict(verdict.metadata)))
    return results
