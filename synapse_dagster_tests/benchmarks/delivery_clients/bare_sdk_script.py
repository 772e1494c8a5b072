#!/usr/bin/env python3
"""The baseline: the upload script users write today, as the Synapse upload-workflow guide lays it out.

``python bare_sdk_script.py SOURCE DATA_COLLECTION_ID`` with ``SYNAPSE_HOST`` and ``SYNAPSE_ACCESS_TOKEN`` set.
Fetch the specs, ``os.walk`` the folder and group files by stem (the spec by extension), one
``client.upload_files_bulk(paths, max_workers=32)``, then ``client.create_data_units`` in chunks of 100 with the
checksums the upload returned. Nothing else: no screening, no ledger, no retries beyond the SDK's own, so it is the
least work a correct delivery through the SDK can do.
"""
import os
import sys
from pathlib import Path

from synapse_sdk.clients.backend import BackendClient

SOURCE, DC_ID = sys.argv[1], int(sys.argv[2])

client = BackendClient(
    base_url=os.environ['SYNAPSE_HOST'],
    access_token=os.environ['SYNAPSE_ACCESS_TOKEN'],
)

# 1. Fetch specs
dc = client.get_data_collection(DC_ID)
specs = dc['file_specifications']
spec_by_extension = {ext.lower(): spec['name'] for spec in specs for ext in spec['extensions']}

# 2. Walk source, group files into data units (one unit per file stem, the spec by extension)
units: dict[str, dict[str, Path]] = {}
all_file_paths = []
for folder, _dirs, names in os.walk(SOURCE):
    for name in names:
        path = Path(folder) / name
        spec_name = spec_by_extension.get(path.suffix.lower())
        if spec_name:
            units.setdefault(path.stem, {})[spec_name] = path
            all_file_paths.append(path)

# 3. Upload files
result = client.upload_files_bulk(all_file_paths, max_workers=32)
checksum = {r.file_key: r.checksum for r in result.results if r.success}  # file_key is the local path here

# 4. Create data units in batches
entries = [{
    'data_collection': DC_ID,
    'files': {spec_name: {'checksum': checksum[str(path)], 'path': path.name} for spec_name, path in files.items()},
    'meta': {'name': group_key},
} for group_key, files in sorted(units.items())]
for start in range(0, len(entries), 100):
    client.create_data_units(entries[start:start + 100])
print(f'uploaded {result.created_count} files, created {len(entries)} data units')
