#!/usr/bin/env python3
"""The SDK's own upload action, run the way the SDK runs a plugin action locally.

``python sdk_upload_action.py PATH STORAGE_ID DATA_COLLECTION_ID`` with ``SYNAPSE_HOST`` and
``SYNAPSE_ACCESS_TOKEN`` set. ``DefaultUploadAction`` is abstract over its params model, so a plugin declares a
subclass with ``UploadParams`` (as the SDK's docstring shows) and ``run_plugin`` runs it in this process through
``LocalExecutor``, which builds the ``BackendClient`` from the environment and logs to the console. ``PATH`` is
relative to the storage, whose folder holds ``image_1/`` and ``label_1/`` (single-path mode wants one folder per
spec name). The worker count and the unit chunk match the bare script's (32 and 100), so the two differ in what
they do, not in how wide they go.
"""
import sys

from synapse_sdk.plugins.actions.upload import DefaultUploadAction, UploadParams
from synapse_sdk.plugins.runner import run_plugin

PATH, STORAGE, DC_ID = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


class Upload(DefaultUploadAction[UploadParams]):
    action_name = 'upload'
    params_model = UploadParams


result = run_plugin('bench_upload', 'upload', {
    'name': 'delivery benchmark', 'path': PATH, 'storage': STORAGE, 'data_collection': DC_ID,
    'upload_max_workers': 32, 'creating_data_unit_batch_size': 100,
}, action_cls=Upload)
if not result.success or result.partial_failure:
    sys.exit(f'the upload action did not deliver everything: {result}')
