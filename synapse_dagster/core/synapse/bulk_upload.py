"""The timeouts of a presigned upload, which the caller sets.

``upload_files_bulk`` builds its own ``BulkUploadConfig``, so each file's PUT may take 300 s and the presign and
confirm calls 120 s, whatever the client was told: too short for a file of several GB, and too long to notice a
storage that stopped answering. :mod:`.presigned` runs the same protocol with these.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UploadTimeouts:
    put_s: float = 300.0  # one file's PUT (or one multipart part)
    api_s: float = 120.0  # asking for presigned URLs, confirming
