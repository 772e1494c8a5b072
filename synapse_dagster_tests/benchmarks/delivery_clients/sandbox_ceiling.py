#!/usr/bin/env python3
"""The sandbox's own ceiling: how many units per second it takes when the client does almost nothing.

``python sandbox_ceiling.py SOURCE DATA_COLLECTION_ID SANDBOX_PID`` with ``SYNAPSE_HOST`` and
``SYNAPSE_ACCESS_TOKEN`` set. Every file is read and hashed before the clock starts; then 32 threads on one shared
httpx pool send the same requests any client must (presign slices of 200 files, one PUT per file, confirm the
slices, create units in chunks of 100), each phase as wide as the pool. Prints one JSON line: the delivery's
wall time, this process's CPU over it, and the sandbox process's CPU over it (from /proc), so a contender slower
than this is slower because of its own work, not the server's.
"""
import hashlib
import json
import mimetypes
import os
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

SOURCE, DC_ID, SANDBOX_PID = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
API = os.environ['SYNAPSE_HOST'].rstrip('/')
HEADERS = {'Synapse-Access-Token': f"Token {os.environ['SYNAPSE_ACCESS_TOKEN']}"}
SPEC = {'.png': 'image_1', '.json': 'label_1'}
WORKERS, SLICE, CHUNK = 32, 200, 100


def pre_read(source: str) -> list[dict]:
    """Every file's bytes and SHA1, so the timed part only talks to the sandbox."""
    files = []
    for folder, _dirs, names in os.walk(source):
        for name in sorted(names):
            data = (Path(folder) / name).read_bytes()
            files.append({'name': name, 'stem': Path(name).stem, 'spec': SPEC[Path(name).suffix], 'data': data,
                          'sha1': hashlib.sha1(data).hexdigest(), 'type': mimetypes.guess_type(name)[0]})
    return files


def sandbox_cpu_s() -> float:
    fields = Path(f'/proc/{SANDBOX_PID}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')  # utime + stime


def post(http: httpx.Client, path: str, body) -> object:
    response = http.post(f'{API}/{path}', json=body, headers=HEADERS)
    response.raise_for_status()
    return response.json()


def presign(http: httpx.Client, files: list[dict]) -> None:
    body = {'files': [{'filename': f['name'], 'size': len(f['data']), 'content_type': f['type']} for f in files],
            'expiration': 3600}
    for f, planned in zip(files, post(http, 'data_files/presigned_upload/upload/', body)['files'], strict=True):
        f['key'], f['url'] = planned['file_key'], planned['presigned_url']


def put(http: httpx.Client, f: dict) -> None:
    http.put(f['url'], content=f['data'], headers={'Content-Type': f['type']} if f['type'] else {}).raise_for_status()


def confirm(http: httpx.Client, files: list[dict]) -> None:
    body = {'files': [{'file_key': f['key'], 'checksum': f['sha1'], 'size': len(f['data'])} for f in files]}
    results = post(http, 'data_files/presigned_upload/confirm_upload/', body)['results']
    assert all(r['success'] for r in results), [r for r in results if not r['success']][:3]


def create(http: httpx.Client, units: list[tuple[str, list[dict]]]) -> None:
    post(http, 'data_units/', [{'data_collection': DC_ID, 'meta': {'name': stem},
                                'files': {f['spec']: {'checksum': f['sha1'], 'path': f['name']} for f in files}}
                               for stem, files in units])


def deliver(files: list[dict]) -> None:
    """Presign, PUT, confirm, create: each phase spread over the 32 threads of one pool."""
    slices = [files[i:i + SLICE] for i in range(0, len(files), SLICE)]
    by_stem: dict[str, list[dict]] = {}
    for f in files:
        by_stem.setdefault(f['stem'], []).append(f)
    units = sorted(by_stem.items())
    chunks = [units[i:i + CHUNK] for i in range(0, len(units), CHUNK)]
    limits = httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS)
    with httpx.Client(limits=limits, timeout=300) as http, ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(lambda s: presign(http, s), slices))
        list(pool.map(lambda f: put(http, f), files))
        list(pool.map(lambda s: confirm(http, s), slices))
        list(pool.map(lambda c: create(http, c), chunks))


files = pre_read(SOURCE)
cpu0, server0, started = resource.getrusage(resource.RUSAGE_SELF), sandbox_cpu_s(), time.perf_counter()
deliver(files)
wall, server1, cpu1 = time.perf_counter() - started, sandbox_cpu_s(), resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({'wall_s': wall, 'sandbox_cpu_s': server1 - server0,
                  'client_cpu_s': cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime,
                  'units': len({f['stem'] for f in files})}))
