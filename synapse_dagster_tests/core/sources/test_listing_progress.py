"""A long listing says how far it got at intervals, never per file; listeners in the process hear it more often."""

from __future__ import annotations

from synapse_dagster.core.sources.files import file_from_row
from synapse_dagster.core.sources.listing_progress import ListingProgress
from synapse_dagster.core.sources.location import shown
from synapse_dagster.core.sources.roots import SourceRoot, list_roots
from synapse_dagster.core.watchers import Listing, listening
from synapse_dagster_tests.core.sources.trees import TREE

SECRET_FIELDS = ("access_key", "secret_key", "session_token", "gcs_token", "sftp_password", "sftp_key_passphrase",
                 "azure_account_key", "azure_connection_string", "azure_sas_token")


def test_listing_speaks_every_interval_and_at_its_end_only_when_it_spoke():
    now = [0.0]
    heard: list = []
    with listening(heard.append):
        progress = ListingProgress("s3://bucket/b001/", every_s=10.0, tick_s=1.0, clock=lambda: now[0])
        lines = []
        for second in range(25):  # 40 files a second for 25 s
            now[0] = float(second)
            lines += [line for _ in range(40) if (line := progress.advance(2**20))]
        now[0] = 25.0
        last = progress.finish()
    assert lines == ["listed 401 files (401.0 MiB) so far from s3://bucket/b001/",
                     "listed 801 files (801.0 MiB) so far from s3://bucket/b001/"]
    assert last == "listed 1,000 files (1000.0 MiB) from s3://bucket/b001/ in 25 s"
    assert heard[0] == Listing("s3://bucket/b001/", 0, 0)
    assert heard[-1] == Listing("s3://bucket/b001/", 1000, 1000 * 2**20, done=True)
    assert len(heard) == 1 + 24 + 1  # the start, one a tick (each second but the first), the end: never per file
    counts = [(e.files, e.bytes) for e in heard]
    assert counts == sorted(counts)


def test_a_short_listing_says_nothing_to_the_log_but_its_listeners_hear_the_totals():
    now = [0.0]
    heard: list = []
    lines: list[str] = []
    files = [file_from_row((f"/data/b001/f{i}.png", f"f{i}.png", 10, 0, None, None, None, None)) for i in range(5)]
    with listening(heard.append):
        progress = ListingProgress("/data/b001", clock=lambda: now[0])
        assert list(progress.counting(iter(files), lines.append)) == files  # the stream passes unchanged
    assert lines == []
    assert heard[-1] == Listing("/data/b001", 5, 50, done=True)


def test_the_counting_stream_reports_to_the_log_callback_at_intervals():
    now = [0.0]
    lines: list[str] = []

    def files():
        for i in range(30):
            now[0] = i * 1.0  # a slow listing: one file a second
            yield file_from_row((f"/d/f{i}", f"f{i}", 1, 0, None, None, None, None))

    progress = ListingProgress("/d", every_s=10.0, clock=lambda: now[0])
    assert sum(1 for _ in progress.counting(files(), lines.append)) == 30
    assert lines == ["listed 11 files (11 B) so far from /d", "listed 21 files (21 B) so far from /d",
                     "listed 30 files (30 B) from /d in 29 s"]


def test_a_source_shown_in_the_lines_carries_no_password():
    progress = ListingProgress(shown("sftp://ingest:hunter22@nas.example:2222/exports/b001"), every_s=0.0)
    line = progress.advance(1)
    assert line is not None and "hunter22" not in line and "nas.example" in line


def test_every_back_end_reports_its_listing_by_a_name_without_secrets(backend):
    """A real listing through list_roots, with an interval of 0 so each file would speak: the lines and the
    events name the source as its URI shows it, and no credential of the connection appears in them."""
    backend.put_tree(TREE, "in/")
    location = backend.location("in")
    root = SourceRoot(None, location, backend.options, True, "pipeline 'p'")
    lines: list[str] = []
    heard: list = []
    with listening(heard.append):
        files = list(list_roots([root], on_progress=lines.append, every_s=0.0))
    assert len(files) == len(TREE) and len(lines) == len(TREE) + 1  # one a file (every_s=0), and the end
    assert lines[-1].startswith(f"listed {len(TREE)} files (") and f"from {shown(location.uri)} in " in lines[-1]
    assert heard[-1] == Listing(shown(location.uri), len(TREE), sum(map(len, TREE.values())), done=True)
    secrets = [getattr(backend.options, name) for name in SECRET_FIELDS if getattr(backend.options, name)]
    told = "\n".join(lines + [e.source for e in heard])
    assert not [s for s in secrets if isinstance(s, str) and s in told]
