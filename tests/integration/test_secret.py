"""`secret` against a stand-in API server, through real kubeconfig files and a fake in-cluster ServiceAccount."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness.cli import Completed, run_cli
from harness.fixtures_kube import KUBE_TOKEN, write_kubeconfig
from harness.kubeapi import KubeAPI
from harness.pki import PKI

from fluxmirror.cli import main

BEARER = {"host": "bearer.example", "credential": {"value": "b3arer-t0ken"}}
BASIC = {"host": "basic.example:5000", "username": "bob", "credential": {"value": "pa55"}}
TLS_ONLY = {"host": "tls.example", "maxChunkSize": 1024}
DOCKERCONFIG = (
    b'{"auths":{"basic.example:5000":{"username":"bob","password":"pa55","auth":"Ym9iOnBhNTU="},'
    b'"bearer.example":{"registrytoken":"b3arer-t0ken"}}}'
)


@pytest.fixture(autouse=True)
def _no_ambient_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Neither the developer's kubeconfig nor a pod's environment may leak into a test."""
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "POD_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FLUXMIRROR_SERVICEACCOUNT_DIR", str(tmp_path / "no-serviceaccount"))


def write_config(tmp_path: Path, *hosts: dict[str, Any]) -> Path:
    path = tmp_path / "mirror.yaml"
    config = {"apiVersion": "mirror.plugin.fluxcd.io/v1beta1", "kind": "Config", "hosts": list(hosts)}
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["secret", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def payload(secret: dict[str, Any]) -> bytes:
    return base64.b64decode(secret["data"][".dockerconfigjson"])


def test_creates_the_dockerconfigjson_secret(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kube_api: KubeAPI, pki: PKI
) -> None:
    config = write_config(tmp_path, BEARER, TLS_ONLY, BASIC)
    kubeconfig = write_kubeconfig(tmp_path, kube_api, pki)
    code, out, err = run(capsys, "regcreds", "-f", str(config), "--kubeconfig", str(kubeconfig))
    assert (code, err) == (0, "")
    assert out == (
        "• skipping tls.example: no credential configured (TLS-only host)\n✔ secret team/regcreds created with 2 host(s)\n"
    )
    [create] = kube_api.requests
    assert (create.method, create.path) == ("POST", "/api/v1/namespaces/team/secrets")
    assert create.headers["authorization"] == [f"Bearer {KUBE_TOKEN}"]
    assert create.body is not None
    assert (create.body["type"], list(create.body["data"])) == ("kubernetes.io/dockerconfigjson", [".dockerconfigjson"])
    assert create.body["metadata"] == {"name": "regcreds", "namespace": "team"}
    assert payload(create.body) == DOCKERCONFIG
    assert payload(kube_api.secrets[("team", "regcreds")]) == DOCKERCONFIG
    assert "b3arer-t0ken" not in out + err and "pa55" not in out + err


def test_replaces_an_existing_secret_keeping_labels_and_annotations(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kube_api: KubeAPI, pki: PKI
) -> None:
    metadata = {"name": "regcreds", "namespace": "team", "labels": {"app": "x"}, "annotations": {"note": "keep"}}
    old = kube_api.store(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": metadata,
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(b'{"auths":{}}').decode(), "stale": "eA=="},
        }
    )
    old_version = old["metadata"]["resourceVersion"]
    config = write_config(tmp_path, BEARER)
    code, out, _ = run(
        capsys, "regcreds", "-f", str(config), "--kubeconfig", str(write_kubeconfig(tmp_path, kube_api, pki))
    )
    assert (code, out) == (0, "✔ secret team/regcreds replaced with 1 host(s)\n")
    assert [request.method for request in kube_api.requests] == ["POST", "GET", "PUT"]
    put = kube_api.requests[2].body
    assert put is not None and put["metadata"]["resourceVersion"] == old_version
    stored = kube_api.secrets[("team", "regcreds")]
    assert (stored["metadata"]["labels"], stored["metadata"]["annotations"]) == ({"app": "x"}, {"note": "keep"})
    assert list(stored["data"]) == [".dockerconfigjson"]
    assert payload(stored) == b'{"auths":{"bearer.example":{"registrytoken":"b3arer-t0ken"}}}'


def test_create_flag_refuses_an_existing_secret(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kube_api: KubeAPI, pki: PKI
) -> None:
    kube_api.store({"metadata": {"name": "regcreds", "namespace": "team"}, "type": "kubernetes.io/dockerconfigjson"})
    config = write_config(tmp_path, BEARER)
    kubeconfig = write_kubeconfig(tmp_path, kube_api, pki)
    code, out, err = run(capsys, "regcreds", "--create", "-f", str(config), "--kubeconfig", str(kubeconfig))
    assert (code, out, err) == (1, "", '✗ create secret: secrets "regcreds" already exists\n')
    assert [request.method for request in kube_api.requests] == ["POST"]


def test_a_concurrent_update_is_retried(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kube_api: KubeAPI, pki: PKI
) -> None:
    kube_api.store({"metadata": {"name": "regcreds", "namespace": "team"}, "type": "kubernetes.io/dockerconfigjson"})
    kube_api.concurrent_writes = 2
    config = write_config(tmp_path, BEARER)
    code, out, _ = run(
        capsys, "regcreds", "-f", str(config), "--kubeconfig", str(write_kubeconfig(tmp_path, kube_api, pki))
    )
    assert (code, out) == (0, "✔ secret team/regcreds replaced with 1 host(s)\n")
    assert [request.method for request in kube_api.requests] == ["POST", "GET", "PUT"] * 3
    assert (
        payload(kube_api.secrets[("team", "regcreds")])
        == b'{"auths":{"bearer.example":{"registrytoken":"b3arer-t0ken"}}}'
    )


def test_the_secret_type_cannot_change(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kube_api: KubeAPI, pki: PKI
) -> None:
    kube_api.store({"metadata": {"name": "regcreds", "namespace": "team"}, "type": "Opaque"})
    config = write_config(tmp_path, BEARER)
    code, _, err = run(
        capsys, "regcreds", "-f", str(config), "--kubeconfig", str(write_kubeconfig(tmp_path, kube_api, pki))
    )
    assert (code, err) == (
        1,
        '✗ update secret: Secret "regcreds" is invalid: type: Invalid value: "kubernetes.io/dockerconfigjson": '
        "field is immutable\n",
    )


def test_host_flag_selects_hosts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kube_api: KubeAPI, pki: PKI
) -> None:
    config = write_config(tmp_path, BEARER, TLS_ONLY, BASIC)
    kubeconfig = write_kubeconfig(tmp_path, kube_api, pki)
    code, out, _ = run(
        capsys, "regcreds", "-f", str(config), "--kubeconfig", str(kubeconfig), "--host", "basic.example:5000"
    )
    assert (code, out) == (0, "✔ secret team/regcreds created with 1 host(s)\n")
    assert payload(kube_api.secrets[("team", "regcreds")]) == (
        b'{"auths":{"basic.example:5000":{"username":"bob","password":"pa55","auth":"Ym9iOnBhNTU="}}}'
    )
    code, out, err = run(
        capsys, "regcreds", "-f", str(config), "--kubeconfig", str(kubeconfig), "--host", "nope.example"
    )
    assert (code, out, err) == (1, "", '✗ host "nope.example" not found in hosts\n')


def test_config_without_hosts(capsys: pytest.CaptureFixture[str], tmp_path: Path, kube_api: KubeAPI, pki: PKI) -> None:
    code, _, err = run(capsys, "regcreds", "-f", str(write_config(tmp_path)), "--kubeconfig", str(tmp_path / "none"))
    assert (code, err) == (1, "✗ config has no hosts\n")
    assert kube_api.requests == []


def test_a_failing_host_stops_before_writing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kube_api: KubeAPI, pki: PKI
) -> None:
    broken = {"host": "broken.example", "credential": {"fromPath": "missing-token"}}
    config = write_config(tmp_path, BEARER, broken)
    code, _, err = run(
        capsys, "regcreds", "-f", str(config), "--kubeconfig", str(write_kubeconfig(tmp_path, kube_api, pki))
    )
    assert code == 1 and err.startswith('✗ host "broken.example": credential.fromPath: ')
    assert kube_api.requests == []


@pytest.mark.parametrize(
    ("context_namespace", "flags", "in_cluster_namespace", "expected"),
    [
        ("team", ["-n", "flagged"], "pod-ns", "flagged"),
        ("team", [], "pod-ns", "team"),
        (None, [], "pod-ns", "pod-ns"),
        (None, [], None, "default"),
    ],
)
def test_namespace_resolution_order(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    kube_api: KubeAPI,
    pki: PKI,
    context_namespace: str | None,
    flags: list[str],
    in_cluster_namespace: str | None,
    expected: str,
) -> None:
    """client-go: the flag, the context, then (in a pod) the ServiceAccount's namespace, then `default`."""
    if in_cluster_namespace:
        serviceaccount(monkeypatch, tmp_path, kube_api, pki, in_cluster_namespace)
    kubeconfig = write_kubeconfig(tmp_path, kube_api, pki, context_namespace)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    code, out, _ = run(capsys, "regcreds", "-f", str(write_config(tmp_path, BEARER)), *flags)
    assert (code, out) == (0, f"✔ secret {expected}/regcreds created with 1 host(s)\n")
    assert (expected, "regcreds") in kube_api.secrets


def serviceaccount(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, api: KubeAPI, pki: PKI, namespace: str) -> None:
    directory = tmp_path / "serviceaccount"
    directory.mkdir()
    (directory / "token").write_text(KUBE_TOKEN)
    (directory / "namespace").write_text(namespace)
    (directory / "ca.crt").write_bytes(pki.ca_path.read_bytes())
    host, port = api.url.removeprefix("https://").rsplit(":", 1)
    monkeypatch.setenv("FLUXMIRROR_SERVICEACCOUNT_DIR", str(directory))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)


def test_in_cluster_configuration(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kube_api: KubeAPI, pki: PKI
) -> None:
    serviceaccount(monkeypatch, tmp_path, kube_api, pki, "flux-system")
    code, out, err = run(capsys, "regcreds", "-f", str(write_config(tmp_path, BASIC)))
    assert (code, out, err) == (0, "✔ secret flux-system/regcreds created with 1 host(s)\n", "")
    assert [header.lower() for header in kube_api.requests[0].headers["authorization"]] == [f"bearer {KUBE_TOKEN}"]


def test_flags_override_the_kubeconfig(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kube_api: KubeAPI, pki: PKI
) -> None:
    """--server/--token/--certificate-authority alone make a usable config; --as/--as-group impersonate."""
    flags = ["--server", kube_api.url, "--token", KUBE_TOKEN, "--certificate-authority", str(pki.ca_path)]
    impersonation = ["--as", "jane", "--as-group", "devs", "--as-group", "ops", "--request-timeout", "5s"]
    code, out, _ = run(capsys, "regcreds", "-f", str(write_config(tmp_path, BEARER)), *flags, *impersonation)
    assert (code, out) == (0, "✔ secret default/regcreds created with 1 host(s)\n")
    headers = kube_api.requests[0].headers
    assert (headers["impersonate-user"], headers["impersonate-group"]) == (["jane"], ["devs", "ops"])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            [],
            "resolve namespace: invalid configuration: no configuration has been provided, "
            "try setting KUBERNETES_MASTER environment variable",
        ),
        (
            ["--context", "nope"],
            "resolve namespace: invalid configuration: context was not found for specified context: nope",
        ),
        (
            ["-n", "x", "--context", "nope"],
            "build kubernetes client config: invalid configuration: context was not found for specified context: nope",
        ),
        (
            ["--request-timeout", "soon"],
            "build kubernetes client config: invalid timeout value. Timeout must be a single "
            "integer in seconds, or an integer followed by a corresponding time unit (e.g. 1s | 2m | 3h)",
        ),
    ],
)
def test_cluster_errors_come_before_any_credential(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kube_api: KubeAPI, pki: PKI, flags: list[str], message: str
) -> None:
    config = write_config(tmp_path, {"host": "broken.example", "credential": {"fromPath": "missing-token"}})
    if flags:
        flags = [*flags, "--kubeconfig", str(write_kubeconfig(tmp_path, kube_api, pki))]
    code, out, err = run(capsys, "regcreds", "-f", str(config), *flags)
    assert (code, out, err) == (1, "", f"✗ {message}\n")


def test_api_errors_are_reported(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kube_api: KubeAPI, pki: PKI
) -> None:
    kubeconfig = write_kubeconfig(tmp_path, kube_api, pki)
    config = write_config(tmp_path, BEARER)
    code, _, err = run(capsys, "regcreds", "-f", str(config), "--kubeconfig", str(kubeconfig), "--token", "wrong")
    assert (code, err) == (1, "✗ create secret: Unauthorized\n")


# ---- the rest of kubectl's connection flags, through the console script ---------------------------


def api_flags(api: KubeAPI, pki: PKI) -> list[str]:
    return ["-s", api.url, "--certificate-authority", str(pki.ca_path)]


def test_short_server_flag(tmp_path: Path, kube_api: KubeAPI, pki: PKI) -> None:
    config = write_config(tmp_path, BEARER)
    result = run_cli("secret", "regcreds", "-f", str(config), *api_flags(kube_api, pki), "--token", KUBE_TOKEN)
    assert result == Completed(0, "✔ secret default/regcreds created with 1 host(s)\n", "")
    assert kube_api.requests[0].headers["authorization"] == [f"Bearer {KUBE_TOKEN}"]


def test_username_and_password_flags_authenticate_with_basic_auth(tmp_path: Path, pki: PKI) -> None:
    """client-go's basic auth: the UTF-8 bytes of `username:password`, base64-encoded."""
    api = KubeAPI(pki, KUBE_TOKEN, basic=("jörg", "pa:ss"))
    try:
        config = write_config(tmp_path, BEARER)
        flags = [*api_flags(api, pki), "--username", "jörg", "--password=pa:ss", "-n", "team"]
        result = run_cli("secret", "regcreds", "-f", str(config), *flags)
        assert result == Completed(0, "✔ secret team/regcreds created with 1 host(s)\n", "")
        expected = "Basic " + base64.b64encode("jörg:pa:ss".encode()).decode()
        assert api.requests[0].headers["authorization"] == [expected]
    finally:
        api.close()


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (
            ["--username", "bob"],
            "more than one authentication method found for robot; found [token basicAuth], only one is allowed",
        ),
        (["--as-uid", "42"], "requesting uid, groups or user-extra for robot without impersonating a user"),
        (["--as-group", "devs"], "requesting uid, groups or user-extra for robot without impersonating a user"),
    ],
    ids=["token-and-basic", "uid-without-user", "group-without-user"],
)
def test_connection_flags_client_go_refuses(
    tmp_path: Path, kube_api: KubeAPI, pki: PKI, flags: list[str], problem: str
) -> None:
    config = write_config(tmp_path, {"host": "broken.example", "credential": {"fromPath": "missing-token"}})
    kubeconfig = write_kubeconfig(tmp_path, kube_api, pki)
    result = run_cli("secret", "regcreds", "-f", str(config), "--kubeconfig", str(kubeconfig), *flags)
    assert result == Completed(1, "", f"✗ resolve namespace: invalid configuration: {problem}\n")
    assert kube_api.requests == []


def test_as_uid_impersonates_with_the_user(tmp_path: Path, kube_api: KubeAPI, pki: PKI) -> None:
    config = write_config(tmp_path, BEARER)
    kubeconfig = write_kubeconfig(tmp_path, kube_api, pki)
    flags = ["--kubeconfig", str(kubeconfig), "--as", "jane", "--as-uid", "1234-abcd", "--as-group", "devs"]
    assert run_cli("secret", "regcreds", "-f", str(config), *flags).code == 0
    headers = kube_api.requests[0].headers
    assert (headers["impersonate-user"], headers["impersonate-uid"], headers["impersonate-group"]) == (
        ["jane"],
        ["1234-abcd"],
        ["devs"],
    )


@pytest.mark.parametrize(
    ("flags", "compressed"),
    [([], True), (["--disable-compression=false"], True), (["--disable-compression"], False)],
    ids=["default", "false", "disabled"],
)
def test_response_compression(tmp_path: Path, kube_api: KubeAPI, pki: PKI, flags: list[str], compressed: bool) -> None:
    """Like Go's transport, responses are asked for gzipped (and inflated), unless disabled."""
    kube_api.store({"metadata": {"name": "regcreds", "namespace": "team"}, "type": "kubernetes.io/dockerconfigjson"})
    config = write_config(tmp_path, BEARER)
    kubeconfig = write_kubeconfig(tmp_path, kube_api, pki)
    result = run_cli("secret", "regcreds", "-f", str(config), "--kubeconfig", str(kubeconfig), *flags)
    assert result == Completed(0, "✔ secret team/regcreds replaced with 1 host(s)\n", "")
    assert [request.method for request in kube_api.requests] == ["POST", "GET", "PUT"]
    for request in kube_api.requests:
        asked = "gzip" in ",".join(request.headers.get("accept-encoding", []))
        assert asked is compressed


def test_cache_dir_is_accepted_and_unused(tmp_path: Path, kube_api: KubeAPI, pki: PKI) -> None:
    config = write_config(tmp_path, BEARER)
    kubeconfig = write_kubeconfig(tmp_path, kube_api, pki)
    flags = ["--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "cache")]
    assert run_cli("secret", "regcreds", "-f", str(config), *flags).code == 0
    assert not (tmp_path / "cache").exists()


def test_kubectl_boolean_flags_take_values(tmp_path: Path, kube_api: KubeAPI, pki: PKI) -> None:
    config = write_config(tmp_path, BEARER)
    kubeconfig = write_kubeconfig(tmp_path, kube_api, pki)
    flags = ["--kubeconfig", str(kubeconfig), "--create=false", "--insecure-skip-tls-verify=false"]
    assert run_cli("secret", "regcreds", "-f", str(config), *flags).code == 0
    assert (
        run_cli("secret", "regcreds", "-f", str(config), *flags).out
        == "✔ secret team/regcreds replaced with 1 host(s)\n"
    )
    refused = run_cli("secret", "regcreds", "-f", str(config), "--kubeconfig", str(kubeconfig), "--create=true")
    assert refused == Completed(1, "", '✗ create secret: secrets "regcreds" already exists\n')
