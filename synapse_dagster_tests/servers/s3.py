"""S3: moto's server in a thread, with IAM authentication switched on, so wrong keys and missing permissions fail
the way they do on AWS (moto accepts any key otherwise)."""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import pytest

from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster_tests.servers.common import unique


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str = field(repr=False)
    limited_access_key: str  # may only touch buckets named "open-*"
    limited_secret_key: str = field(repr=False)
    region: str = "us-east-1"
    _client: Any = field(default=None, repr=False, compare=False)

    def options(self, **overrides: Any) -> ConnectionOptions:
        values = {
            "endpoint_url": self.endpoint,
            "region": self.region,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "connect_timeout": 2.0,
            "max_attempts": 2,
        }
        return ConnectionOptions(**{**values, **overrides})

    def client(self) -> Any:
        """A botocore S3 client with the admin key (made once: building one costs about 0.1 s)."""
        if self._client is None:
            import botocore.session

            self._client = botocore.session.get_session().create_client(
                "s3",
                endpoint_url=self.endpoint,
                region_name=self.region,
                aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key,
            )
        return self._client

    def new_bucket(self, prefix: str = "bucket") -> str:
        name = unique(prefix)
        self.client().create_bucket(Bucket=name)
        return name

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.client().put_object(Bucket=bucket, Key=key, Body=data)


def _moto_auth(endpoint: str, count: str) -> None:
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth", data=count.encode(), method="POST", headers={"Content-Type": "text/plain"}
    )
    urllib.request.urlopen(request, timeout=10).read()


@pytest.fixture(scope="session")
def s3_server() -> S3Server:
    import botocore.session
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        iam = botocore.session.get_session().create_client(
            "iam",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        keys = {}
        for user, resources in (("admin", ["*"]), ("limited", ["arn:aws:s3:::open-*", "arn:aws:s3:::open-*/*"])):
            iam.create_user(UserName=user)
            policy = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": resources}],
            }
            iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(policy))
            keys[user] = iam.create_access_key(UserName=user)["AccessKey"]
        _moto_auth(endpoint, "0")  # from now on every request must be signed by a known key and be allowed
        yield S3Server(
            endpoint,
            keys["admin"]["AccessKeyId"],
            keys["admin"]["SecretAccessKey"],
            keys["limited"]["AccessKeyId"],
            keys["limited"]["SecretAccessKey"],
        )
        _moto_auth(endpoint, "inf")
    finally:
        server.stop()
