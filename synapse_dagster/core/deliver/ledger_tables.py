"""The ledger's tables, one row per thing that reached (or may have reached) one Synapse target.

``target`` is the Synapse host and tenant, so one database can serve several backends (staging, production)
without one's rows ever answering for the other.
"""

from __future__ import annotations

import sqlalchemy as sa

METADATA = sa.MetaData()

uploaded_files = sa.Table(
    "uploaded_files", METADATA,
    sa.Column("target", sa.Text, primary_key=True),
    sa.Column("fingerprint", sa.Text, primary_key=True),
    sa.Column("checksum", sa.Text, nullable=False),
    sa.Column("data_file_id", sa.BigInteger),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("uploaded_at", sa.Float, nullable=False),
)

attempted_files = sa.Table(  # an upload whose answer may not have arrived: ask the server before resending
    "attempted_files", METADATA,
    sa.Column("target", sa.Text, primary_key=True),
    sa.Column("fingerprint", sa.Text, primary_key=True),
    sa.Column("attempted_at", sa.Float, nullable=False),
)

units = sa.Table(
    "units", METADATA,
    sa.Column("target", sa.Text, primary_key=True),
    sa.Column("data_collection", sa.BigInteger, primary_key=True),
    sa.Column("dataset_key", sa.Text, primary_key=True),
    sa.Column("status", sa.Text, sa.CheckConstraint("status in ('pending', 'created')"), nullable=False),
    sa.Column("unit_id", sa.BigInteger),
    sa.Column("batch", sa.Text),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("units_pending", "target", "data_collection", "status"),
)

unit_contents = sa.Table(  # what a unit on the server holds (a digest of its files' checksums and its meta)
    "unit_contents", METADATA,
    sa.Column("target", sa.Text, primary_key=True),
    sa.Column("data_collection", sa.BigInteger, primary_key=True),
    sa.Column("dataset_key", sa.Text, primary_key=True),
    sa.Column("digest", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

tasks = sa.Table(
    "tasks", METADATA,
    sa.Column("target", sa.Text, primary_key=True),
    sa.Column("project", sa.BigInteger, primary_key=True),
    sa.Column("data_unit", sa.BigInteger, primary_key=True),
    sa.Column("status", sa.Text, sa.CheckConstraint("status in ('pending', 'created')"), nullable=False),
    sa.Column("task_id", sa.BigInteger),
    sa.Column("updated_at", sa.Float, nullable=False),
)

dead_letters = sa.Table(  # units that failed for good, until a run creates them
    "dead_letters", METADATA,
    sa.Column("target", sa.Text, primary_key=True),
    sa.Column("data_collection", sa.BigInteger, primary_key=True),
    sa.Column("dataset_key", sa.Text, primary_key=True),
    sa.Column("batch", sa.Text, nullable=False),
    sa.Column("stage", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("failed_at", sa.Float, nullable=False),
)

batch_claims = sa.Table(  # one delivery of a batch at a time, with a heartbeat a dead run stops renewing
    "batch_claims", METADATA,
    sa.Column("target", sa.Text, primary_key=True),
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
)

listing_marks = sa.Table(  # how far the key index has read a server listing (see listing_index.py)
    "listing_marks", METADATA,
    sa.Column("target", sa.Text, primary_key=True),
    sa.Column("listing", sa.Text, primary_key=True),  # e.g. "data_units?data_collection=7", "tasks?project=3"
    sa.Column("seen", sa.BigInteger, nullable=False),
    sa.Column("last_id", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
