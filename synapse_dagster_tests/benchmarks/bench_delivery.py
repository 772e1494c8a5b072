"""What delivering a batch to Synapse costs: the project against the bare SDK script users write (not a test).

N units, each a ~100 KB PNG (random bytes behind a valid PNG header, so every checksum differs) and a small JSON
label, laid out as ``image_1/<stem>.png`` and ``label_1/<stem>.json``: the layout the SDK's own upload action
requires (a folder per spec name) and one the project detects (type-separated, folders named after the specs).
Each contender is a whole fresh process, as a user runs it, against the project's Synapse sandbox running as its
own process on a free port (so the server's CPU is not the client's), started afresh with empty state for every
run so nothing is "already uploaded":

* ``bare SDK script`` (the baseline): ``delivery_clients/bare_sdk_script.py``, os.walk, one
  ``upload_files_bulk(max_workers=32)``, ``create_data_units`` in chunks of 100;
* ``DefaultUploadAction``: the SDK's 8-step upload action through ``run_plugin`` (``sdk_upload_action.py``);
* ``project``: ``synapse-dagster ingest`` on a pipeline file for the batch, the whole asset graph in Dagster
  with a SQLite ``DAGSTER_HOME`` made (with the project's dagster.yaml) before the clock starts;
* ``sandbox ceiling``: pre-read bytes and a near-idle httpx client (``sandbox_ceiling.py``): what the sandbox
  takes at most, with the sandbox's own CPU.

Wall time is from spawn to exit; client CPU (user + sys) and peak RSS are the contender's process tree's, from
``wait4`` on that child alone, in a small launcher (``measured.py``: a child of a big process would report the
parent's RSS as its own); the sandbox is another process and is not counted. Runs interleave (a, b, c, d,
a, b, c, d) and each row shows the faster of a contender's two runs. After every run the sandbox is asked
through the real ``BackendClient`` what landed: exactly N units, each with its two files and their checksums.
A run that delivered less, or exited non-zero, makes its row a failed row.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from synapse_dagster_tests.benchmarks.table import Figure, Row, failed_row, print_table

REPO = Path(__file__).resolve().parents[2]
CLIENTS = Path(__file__).resolve().parent / "delivery_clients"
COLLECTION, UPLOAD_STORAGE, SOURCE_STORAGE = 1, 1, 2
BATCH, PIPELINE = "batch", "bench_delivery"
PNG_SIZE = 100_000
CONTENDERS = ("bare", "action", "project", "ceiling")
LABELS = {"bare": "bare SDK script", "action": "DefaultUploadAction", "project": "project",
          "ceiling": "sandbox ceiling (idle client)"}


@dataclass(frozen=True)
class Batch:
    """The data every contender delivers, and what a complete delivery leaves in the sandbox."""
    source: Path  # the storage-like root; ``source/batch`` is the batch folder
    units: int
    pairs: Counter  # (PNG SHA1, JSON SHA1) per unit

    @property
    def folder(self) -> Path:
        return self.source / BATCH


@dataclass
class Run:
    contender: str
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_mb: float = 0.0
    sandbox_cpu_s: float = 0.0
    failed: str | None = None
    requests: int = 0    # API and storage requests the sandbox served
    data_files: int = 0  # DataFiles it holds: 2 per unit, unless a contender uploaded something twice
    inner: dict = field(default_factory=dict)  # what the ceiling client reports about its own timed part


# --- data ------------------------------------------------------------------------------------------------------


def png_bytes(size: int) -> bytes:
    """A PNG signature, a real IHDR and an IDAT of random bytes: what the content guard and the project's checks
    accept as a PNG, with a checksum no other unit shares."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 256, 256, 8, 0, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", os.urandom(size - 57)) + chunk(b"IEND", b"")


def make_batch(root: Path, units: int) -> Batch:
    source = root / "source"
    images, labels = source / BATCH / "image_1", source / BATCH / "label_1"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    pairs: Counter = Counter()
    for unit in range(units):
        png = png_bytes(PNG_SIZE)
        label = json.dumps({"unit": unit, "boxes": [[unit % 200, 40, 20, 20]], "finding": "nodule"}).encode()
        (images / f"U{unit:07d}.png").write_bytes(png)
        (labels / f"U{unit:07d}.json").write_bytes(label)
        pairs[(hashlib.sha1(png).hexdigest(), hashlib.sha1(label).hexdigest())] += 1
    return Batch(source, units, pairs)


# --- the sandbox -----------------------------------------------------------------------------------------------


def seed(batch: Batch, run_dir: Path) -> dict:
    """A presigned-capable default storage (as a real tenant's S3 is; the bare script's ``upload_files_bulk``
    without a strategy looks it up), a local storage over the source (what the SDK action reads through), and a
    collection with the two specs and no meta schema (the action's meta is strings plus its own keys)."""
    return {
        "storages": [
            {"id": UPLOAD_STORAGE, "name": "uploads", "category": "internal", "provider": "amazon_s3",
             "configuration": {"bucket_name": "bench"}, "is_default": True},
            {"id": SOURCE_STORAGE, "name": "source", "category": "internal", "provider": "file_system",
             "configuration": {"location": str(batch.source)}, "is_default": False},
        ],
        "data_collections": [{"id": COLLECTION, "name": "delivery benchmark", "meta": {}, "file_specifications": [
            {"name": "image_1", "file_type": "image", "extensions": [".png"], "is_required": True, "is_primary": True},
            {"name": "label_1", "file_type": "data", "extensions": [".json"], "is_required": True},
        ]}],
    }


@contextlib.contextmanager
def fresh_sandbox(batch: Batch, run_dir: Path) -> Iterator[tuple[str, str, int]]:
    """A new sandbox process with empty state in ``run_dir``: (url, token, pid)."""
    from synapse_sandbox.server import start_sandbox_process

    token = secrets.token_urlsafe(16)
    seed_file = run_dir / "seed.json"
    seed_file.write_text(json.dumps(seed(batch, run_dir)))
    with start_sandbox_process(run_dir / "sandbox", token, seed=seed_file) as process:
        yield process.url, token, process.process.pid


def process_cpu_s(pid: int) -> float:
    """User + system CPU of a running process (the sandbox), from /proc, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def sandbox_stats(url: str, token: str) -> dict:
    """The sandbox's control panel: requests per route and records per kind since it started."""
    request = urllib.request.Request(f"{url}/_sandbox/stats", headers={"Synapse-Access-Token": f"Token {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def delivered(url: str, token: str, batch: Batch) -> str | None:
    """Why the sandbox does not hold exactly the batch (None when it does), asked through the real client."""
    from synapse_sdk.clients.backend import BackendClient

    client = BackendClient(base_url=url, access_token=token, timeout={"connect": 5, "read": 300})
    pages, count = client.list_data_units(params={"data_collection": COLLECTION}, list_all=True, url_conversion={},
                                          page_size=1000)
    units = list(pages)
    if count != batch.units or len(units) != batch.units:
        return f"{len(units):,} units landed, {batch.units:,} expected"
    got = Counter((u["files"]["image_1"]["checksum"], u["files"]["label_1"]["checksum"]) for u in units
                  if set(u["files"]) == {"image_1", "label_1"})
    wrong = sum((batch.pairs - got).values())
    return f"{wrong:,} of {batch.units:,} units lack their two files with the right checksums" if wrong else None


# --- the contenders --------------------------------------------------------------------------------------------


def command(contender: str, batch: Batch, run_dir: Path, sandbox_pid: int) -> list[str]:
    """Each contender as its user starts it: a script run by Python, or the CLI (its console script's module)."""
    python = sys.executable
    return {
        "bare": [python, str(CLIENTS / "bare_sdk_script.py"), str(batch.folder), str(COLLECTION)],
        "action": [python, str(CLIENTS / "sdk_upload_action.py"), BATCH, str(SOURCE_STORAGE), str(COLLECTION)],
        "project": [python, "-m", "synapse_dagster.cli", "ingest", "--pipelines", str(run_dir / "pipelines.yaml"),
                    "--pipeline", PIPELINE, "--batch", BATCH],
        "ceiling": [python, str(CLIENTS / "sandbox_ceiling.py"), str(batch.folder), str(COLLECTION), str(sandbox_pid)],
    }[contender]


def environment(url: str, token: str, run_dir: Path) -> dict[str, str]:
    """What every contender sees: the sandbox's URL and token, an empty HOME (no ~/.synapse/config.json), this
    checkout first on the import path (so the CLI is this tree's), and no observability sinks."""
    env = {k: v for k, v in os.environ.items() if k not in ("SYNAPSE_TENANT", "SENTRY_DSN", "SYNAPSE_PROFILE")}
    path = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    (run_dir / "home").mkdir(exist_ok=True)
    return {**env, "SYNAPSE_HOST": url, "SYNAPSE_ACCESS_TOKEN": token, "HOME": str(run_dir / "home"),
            "PYTHONPATH": path}


def prepare_project(batch: Batch, run_dir: Path, env: dict[str, str]) -> dict[str, str]:
    """The pipeline file a user writes for this batch, a fresh ledger, and a SQLite Dagster home that already
    exists (a deployment's does; creating its schema is a one-time cost the run should not carry)."""
    import yaml

    (run_dir / "pipelines.yaml").write_text(yaml.safe_dump({"pipelines": [{
        "name": PIPELINE, "data_collection": COLLECTION, "storage": SOURCE_STORAGE,
        "source": {"path": str(batch.source), "is_recursive": True}, "batches": {"mode": "folders"},
        "pattern": "auto", "creating_data_unit_batch_size": 100, "upload_max_workers": 32}]}))
    home = run_dir / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {**env, "DAGSTER_HOME": str(home), "SYNAPSE_DAGSTER_STATE_DIR": str(run_dir / "state")}
    subprocess.run([sys.executable, "-c", "import dagster as dg; dg.DagsterInstance.get().get_runs(limit=1)"],
                   env=env, check=True, capture_output=True)
    return env


def run_child(argv: list[str], env: dict[str, str], cwd: Path, log: Path, timeout_s: float) -> dict:
    """Run ``argv`` under ``measured.py`` (its wall, CPU and peak RSS, untouched by this process's size); its whole
    session is killed past ``timeout_s``."""
    figures = log.with_suffix(".figures.json")
    launcher = [sys.executable, "-I", "-S", str(CLIENTS / "measured.py"), str(figures)]
    with open(log, "wb") as out:
        process = subprocess.Popen(launcher + argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return {"exit": f"killed after {timeout_s:.0f} s"}
    if not figures.is_file():
        return {"exit": f"the launcher exited {process.returncode} without figures"}
    return json.loads(figures.read_text())


def run_once(contender: str, batch: Batch, work: Path, index: int) -> Run:
    """One contender run on a fresh sandbox, then the check of what landed."""
    run_dir = work / f"{index:02d}-{contender}"
    run_dir.mkdir()
    try:
        with fresh_sandbox(batch, run_dir) as (url, token, pid):
            env = environment(url, token, run_dir)
            if contender == "project":
                env = prepare_project(batch, run_dir, env)
            log = run_dir / "output.log"
            server0 = process_cpu_s(pid)
            done = run_child(command(contender, batch, run_dir, pid), env, run_dir, log,
                             timeout_s=300 + batch.units * 0.5)
            run = Run(contender, done.get("wall_s", 0.0), done.get("cpu_s", 0.0), done.get("peak_kb", 0) / 1024,
                      process_cpu_s(pid) - server0)
            if done["exit"] != 0:
                run.failed = f"exit {done['exit']}: {_last_line(log)} (log: {log})"
            else:
                stats = sandbox_stats(url, token)  # before the check's own listing requests
                run.requests, run.data_files = sum(stats["requests"].values()), stats["counts"]["data_files"]
                run.failed = delivered(url, token, batch)
            if contender == "ceiling" and not run.failed:
                run.inner = json.loads(log.read_text().strip().splitlines()[-1])
    finally:
        shutil.rmtree(run_dir / "sandbox", ignore_errors=True)  # the uploaded bytes: N x 100 KB per run
    if not run.failed:
        shutil.rmtree(run_dir, ignore_errors=True)
    return run


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def measure(batch: Batch, work: Path, repeats: int = 2) -> dict[str, list[Run]]:
    """Every contender ``repeats`` times, interleaved, so a slow minute of the shared machine hits all alike."""
    runs: dict[str, list[Run]] = {c: [] for c in CONTENDERS}
    for repeat in range(repeats):
        for contender in CONTENDERS:
            run = run_once(contender, batch, work, repeat * len(CONTENDERS) + len(runs[contender]))
            runs[contender].append(run)
            state = f"FAILED: {run.failed}" if run.failed else (
                f"{run.wall_s:.1f} s wall, {run.cpu_s:.1f} s CPU, {run.peak_mb:.0f} MB; sandbox {run.sandbox_cpu_s:.1f} s "
                f"CPU, {run.requests:,} requests, {run.data_files:,} data files")
            print(f"  {batch.units:,} units, {LABELS[contender]} run {repeat + 1}: {state}", file=sys.stderr, flush=True)
    return runs


# --- rows ------------------------------------------------------------------------------------------------------


def best(runs: list[Run]) -> Run | str:
    """The faster run, or why there is none: any run that did not deliver everything fails the contender."""
    failures = [r.failed for r in runs if r.failed]
    return failures[0] if failures else min(runs, key=lambda r: r.wall_s)


def contender_row(topic: str, contender: str, mine: Run | str, base: Run | str, units: int, repeats: int) -> Row:
    if isinstance(mine, str) or isinstance(base, str):
        why = mine if isinstance(mine, str) else f"the baseline failed: {base}"
        return failed_row(topic, LABELS[contender], LABELS["bare"], why)
    return Row(topic, LABELS[contender], LABELS["bare"],
               wall=Figure(mine.wall_s, base.wall_s, "s"), cpu=Figure(mine.cpu_s, base.cpu_s, "s"),
               rss=Figure(mine.peak_mb, base.peak_mb, "MB"),
               detail=f"best of {repeats} by wall; {units / mine.wall_s:,.0f} vs {units / base.wall_s:,.0f} units/s; "
                      f"sandbox CPU {mine.sandbox_cpu_s:.1f} s vs {base.sandbox_cpu_s:.1f} s"
                      + _extra_files(mine, units))


def _extra_files(run: Run, units: int) -> str:
    """Said when a contender left more DataFiles than the units need (it uploaded files twice)."""
    return f"; {run.data_files:,} data files for {2 * units:,} files" if run.data_files != 2 * units else ""


def ceiling_row(topic: str, ceiling: Run | str, base: Run | str, units: int, repeats: int) -> Row:
    """The sandbox's ceiling against the bare script: its timed part only (bytes pre-read, no interpreter start)."""
    if isinstance(ceiling, str) or isinstance(base, str):
        return failed_row(topic, LABELS["ceiling"], LABELS["bare"], ceiling if isinstance(ceiling, str) else base)
    inner = ceiling.inner
    most, bare = units / inner["wall_s"], units / base.wall_s
    return Row(topic, LABELS["ceiling"], LABELS["bare"],
               wall=Figure(inner["wall_s"], base.wall_s, "s"), cpu=Figure(inner["client_cpu_s"], base.cpu_s, "s"),
               detail=f"best of {repeats}; the sandbox takes {most:,.0f} units/s using {inner['sandbox_cpu_s']:.1f} s "
                      f"of its own CPU ({inner['sandbox_cpu_s'] / inner['wall_s']:.0%} of a core); the bare script "
                      f"reached {bare / most:.0%} of that; timed part only: bytes pre-read, no interpreter start")


def rows_for(units: int, runs: dict[str, list[Run]], repeats: int) -> list[Row]:
    topic = f"delivery {units:,} units"
    chosen = {c: best(r) for c, r in runs.items()}
    return [contender_row(topic, "project", chosen["project"], chosen["bare"], units, repeats),
            contender_row(topic, "action", chosen["action"], chosen["bare"], units, repeats),
            ceiling_row(topic, chosen["ceiling"], chosen["bare"], units, repeats)]


def compile_checkout() -> None:
    """Byte-compile this checkout once, as an installed package is (pip compiles on install) and as any second run
    of a checkout finds it: with ``PYTHONDONTWRITEBYTECODE`` set (these machines set it) every run of the project
    would otherwise compile its own modules again, a cost no user's second run pays. The SDK and Dagster come
    from site-packages, compiled at install, for every contender alike."""
    import compileall

    for package in ("synapse_dagster", "synapse_sandbox"):
        compileall.compile_dir(REPO / package, quiet=1)


def rows(units: tuple[int, ...] = (2000, 10_000), repeats: int = 2) -> list[Row]:
    """The delivery rows at each size; the data is made once per size and shared by every contender."""
    out: list[Row] = []
    compile_checkout()
    for n in units:
        with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp:
            started = time.perf_counter()
            batch = make_batch(Path(tmp), n)
            print(f"made {n:,} units ({n * 2:,} files) in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            work = Path(tempfile.mkdtemp(prefix=f"bench-delivery-runs-{n}-"))
            out += rows_for(n, measure(batch, work, repeats), repeats)
            if not any(work.iterdir()):
                work.rmdir()  # failed runs keep their folder (log, sandbox state) for a look
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, nargs="+", default=[2000, 10_000])
    parser.add_argument("--repeats", type=int, default=2, help="runs per contender; the faster one is shown")
    args = parser.parse_args(argv)
    table = rows(tuple(args.units), args.repeats)
    print_table(table)
    return 1 if any(r.failed for r in table) else 0


if __name__ == "__main__":
    raise SystemExit(main())
