"""Each case gets its own collection in the sandbox and a batch of five good units to add its bad input to."""

import pytest

from synapse_dagster_tests.bad_input.harness import good_batch, seed_collection


@pytest.fixture
def collection(synapse_env):
    return seed_collection(synapse_env)


@pytest.fixture
def batch(tmp_path):
    return good_batch(tmp_path / "incoming")
