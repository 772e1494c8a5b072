"""The SDK's presigned bulk upload, with timeouts the caller sets.

``upload_files_bulk`` builds its own ``BulkUploadConfig``, so each file's PUT may take 300 s and the presign and
confirm calls 120 s, whatever the client was told: too short for a file of several GB, and too long to notice a
storage that stopped answering. This runs the same presigned strategy behind the same content guard
(``ensure_safe`` on every path, before anything is sent), with a config that carries the caller's timeouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synapse_sdk.clients.backend.bulk_upload.config import BulkUploadConfig
from synapse_sdk.clients.backend.bulk_upload.models import ConfirmUploadResponse
from synapse_sdk.utils.file.content_guard import ensure_safe


@dataclass(frozen=True)
class UploadTimeouts:
    put_s: float = 300.0  # one file's PUT (or one multipart part)
    api_s: float = 120.0  # asking for presigned URLs, confirming


def upload_presigned(client: Any, paths: list[Path], *, max_workers: int, batch_size: int, max_upload_retries: int,
                     timeouts: UploadTimeouts = UploadTimeouts()) -> ConfirmUploadResponse:
    if not paths:
        return ConfirmUploadResponse(results=[], created_count=0, failed_count=0)
    for path in paths:
        ensure_safe(path)
    config = BulkUploadConfig(max_workers=max_workers, batch_size=batch_size, max_upload_retries=max_upload_retries,
                              preferred_strategy="presigned", timeout=timeouts.put_s, api_timeout=timeouts.api_s)
    return client._get_strategy_instance("presigned").upload_files(paths, config, on_progress=None)
