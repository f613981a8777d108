"""Talking to the Kubernetes API server for `secret`: kubectl-style connection flags and the Secret upsert.

The official `kubernetes` client is slow to import, so only the `secret` command imports this package.
"""

from fluxmirror.kube.client import SERVICEACCOUNT_DIR_ENV, KubeConnection, KubeError, KubeOptions, connect
from fluxmirror.kube.secret import SECRET_TYPE, UpsertResult, docker_config_json, upsert_secret

__all__ = [
    "SECRET_TYPE",
    "SERVICEACCOUNT_DIR_ENV",
    "KubeConnection",
    "KubeError",
    "KubeOptions",
    "UpsertResult",
    "connect",
    "docker_config_json",
    "upsert_secret",
]
