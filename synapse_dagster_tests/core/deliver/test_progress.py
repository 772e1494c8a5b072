"""Progress lines come at intervals and at the end, with files, bytes, rate and time left."""

from synapse_dagster.core.deliver.progress import Progress


def test_progress_speaks_every_interval_and_at_the_end():
    now = [0.0]
    progress = Progress(files=100, bytes=100 * 2**20, every_s=10.0, clock=lambda: now[0])
    now[0] = 4.0
    assert progress.advance(20, 20 * 2**20) is None  # 4 s since the start: quiet
    now[0] = 10.0
    line = progress.advance(30, 30 * 2**20)
    assert line == "uploaded 50/100 files, 50.0 MiB of 100.0 MiB (5.0 files/s, 5.0 MiB/s), about 10 s left"
    now[0] = 12.0
    assert progress.advance(10, 0) is None
    now[0] = 13.0
    assert progress.advance(40, 50 * 2**20).startswith("uploaded 100/100 files, 100.0 MiB of 100.0 MiB")  # the end
