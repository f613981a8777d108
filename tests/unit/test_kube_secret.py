"""The `.dockerconfigjson` payload: byte-exact shape, and the command never loads the kubernetes client early."""

from __future__ import annotations

import subprocess
import sys

from fluxmirror.auth.credentials import Credential
from fluxmirror.kube import docker_config_json


def test_payload_is_compact_sorted_and_omits_empty_fields() -> None:
    payload = docker_config_json(
        {
            "z.example": Credential(registry_token="tok"),
            "a.example": Credential(username="u", password="p"),
            "m.example": Credential(username="only-user"),
        }
    )
    assert payload == (
        b'{"auths":{"a.example":{"username":"u","password":"p","auth":"dTpw"},'
        b'"m.example":{"username":"only-user","auth":"b25seS11c2VyOg=="},'
        b'"z.example":{"registrytoken":"tok"}}}'
    )


def test_no_hosts_is_an_empty_auths_object() -> None:
    assert docker_config_json({}) == b'{"auths":{}}'


def test_the_cli_does_not_import_kubernetes_until_secret_runs() -> None:
    code = "import sys, fluxmirror.cli; fluxmirror.cli.main(['version']); print('kubernetes' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.splitlines()[-1] == "False"
