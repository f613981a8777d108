"""Ambient Docker/Podman config credentials, with real credential-helper executables on a private PATH."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from fluxmirror.auth import dockerconfig
from fluxmirror.auth.credentials import ANONYMOUS, Credential
from fluxmirror.auth.dockerconfig import CredentialError, DockerConfigCredentials

HUB_KEY = "https://index.docker.io/v1/"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_config(directory: Path, config: dict[str, Any], name: str = "config.json") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    return path


@pytest.fixture
def helper_log(tmp_path: Path) -> Path:
    return tmp_path / "helper.log"


def make_helper(bin_dir: Path, name: str, body: str) -> None:
    """An executable `docker-credential-<name>`; `server` holds its stdin, `log` records each call."""
    script = bin_dir / f"docker-credential-{name}"
    prelude = f"""\
        #!{sys.executable}
        import json, sys, time
        server = sys.stdin.read()
        with open({str(bin_dir.parent / "helper.log")!r}, "a") as log:
            log.write(f"{name} {{' '.join(sys.argv[1:])}} {{server}}\\n")
        """
    script.write_text(textwrap.dedent(prelude) + textwrap.dedent(body))
    script.chmod(0o755)


STORE_HELPER = """\
    time.sleep(0.2)
    store = {
        "registry.example.com": {"ServerURL": server, "Username": "helper-user", "Secret": "helper-pass"},
        "tokens.example.com": {"ServerURL": server, "Username": "<token>", "Secret": "refresh-token"},
        "https://index.docker.io/v1/": {"ServerURL": server, "Username": "hub-user", "Secret": "hub-pass"},
    }
    if server in store:
        print(json.dumps(store[server]))
    else:
        print("credentials not found in native keychain")
        sys.exit(1)
    """


def read_log(path: Path) -> list[str]:
    return sorted(path.read_text().splitlines()) if path.exists() else []


AUTHS_CASES = [
    pytest.param(
        {"registry.example.com": {"auth": b64("alice:pa:ss")}},
        "registry.example.com",
        "team/app",
        Credential(username="alice", password="pa:ss"),
        id="auth-base64-splits-at-first-colon",
    ),
    pytest.param(
        {"registry.example.com": {"username": "bob", "password": "hunter2"}},
        "registry.example.com",
        "team/app",
        Credential(username="bob", password="hunter2"),
        id="username-password-fields",
    ),
    pytest.param(
        {"registry.example.com": {"auth": b64("alice:secret"), "username": "bob", "password": "other"}},
        "registry.example.com",
        "team/app",
        Credential(username="alice", password="secret"),
        id="auth-wins-over-fields",
    ),
    pytest.param(
        {"registry.example.com": {"username": "00000000-0000-0000-0000-000000000000", "identitytoken": "refresh"}},
        "registry.example.com",
        "team/app",
        Credential(username="00000000-0000-0000-0000-000000000000", identity_token="refresh"),
        id="identitytoken",
    ),
    pytest.param(
        {"registry.example.com": {"registrytoken": "bearer-token"}},
        "registry.example.com",
        "team/app",
        Credential(registry_token="bearer-token"),
        id="registrytoken",
    ),
    pytest.param(
        {
            "registry.example.com": {"username": "host", "password": "host-pass"},
            "registry.example.com/team/app": {"username": "repo", "password": "repo-pass"},
        },
        "registry.example.com",
        "team/app",
        Credential(username="repo", password="repo-pass"),
        id="repository-key-first",
    ),
    pytest.param(
        {
            "registry.example.com": {"username": "host", "password": "host-pass"},
            "registry.example.com/team/app": {"username": "repo", "password": "repo-pass"},
        },
        "registry.example.com",
        "team/other",
        Credential(username="host", password="host-pass"),
        id="other-repository-uses-registry-key",
    ),
    pytest.param(
        {"registry.example.com/team/app": {"username": "repo", "password": "repo-pass"}},
        "registry.example.com",
        "team/other",
        Credential(username="repo", password="repo-pass"),
        id="repository-entry-reduces-to-host-like-docker",
    ),
    pytest.param(
        {"https://registry.example.com/v2/": {"auth": b64("legacy:pass")}},
        "registry.example.com",
        "team/app",
        Credential(username="legacy", password="pass"),
        id="hostname-reduced-url",
    ),
    pytest.param(
        {
            "http://registry.example.com": {"username": "reduced", "password": "x"},
            "registry.example.com": {"username": "exact", "password": "y"},
        },
        "registry.example.com",
        "team/app",
        Credential(username="exact", password="y"),
        id="exact-key-beats-reduced",
    ),
    pytest.param(
        {"registry.example.com:5000": {"username": "port", "password": "x"}},
        "registry.example.com",
        "team/app",
        ANONYMOUS,
        id="port-is-part-of-the-host",
    ),
    pytest.param(
        {"other.example.com": {"username": "other", "password": "x"}},
        "registry.example.com",
        "team/app",
        ANONYMOUS,
        id="no-entry",
    ),
    pytest.param(
        {HUB_KEY: {"auth": b64("hub:pass")}},
        "index.docker.io",
        "library/alpine",
        Credential(username="hub", password="pass"),
        id="docker-hub-key",
    ),
    pytest.param(
        {"docker.io": {"username": "short", "password": "x"}},
        "index.docker.io",
        "library/alpine",
        Credential(username="short", password="x"),
        id="docker-hub-docker-io-spelling",
    ),
    pytest.param(
        {"https://index.docker.io/v2/": {"username": "v2", "password": "x"}},
        "index.docker.io",
        "library/alpine",
        Credential(username="v2", password="x"),
        id="docker-hub-reduced-spelling",
    ),
    pytest.param(
        {"docker.io": {"username": "short", "password": "x"}, HUB_KEY: {"username": "canonical", "password": "y"}},
        "index.docker.io",
        "library/alpine",
        Credential(username="canonical", password="y"),
        id="docker-hub-canonical-key-first",
    ),
    pytest.param(
        {HUB_KEY: {"username": "hub", "password": "x"}, "index.docker.io/library/alpine": {"registrytoken": "t"}},
        "index.docker.io",
        "library/alpine",
        Credential(registry_token="t"),
        id="docker-hub-repository-key-first",
    ),
    pytest.param(
        {"registry.example.com": {}},
        "registry.example.com",
        "team/app",
        ANONYMOUS,
        id="empty-entry-is-anonymous",
    ),
]


@pytest.mark.parametrize(("auths", "registry", "repository", "expected"), AUTHS_CASES)
async def test_auths_entries(
    tmp_path: Path, auths: dict[str, Any], registry: str, repository: str, expected: Credential
) -> None:
    write_config(tmp_path, {"auths": auths})
    source = DockerConfigCredentials({"DOCKER_CONFIG": str(tmp_path)})
    assert await source.resolve(registry, repository) == expected


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param("{", "Input data was truncated", id="truncated-json"),
        pytest.param("[]", "Expected `object`, got `array`", id="not-an-object"),
        pytest.param('{"auths": []}', "Expected `object`, got `array` - at `$.auths`", id="auths-not-an-object"),
        pytest.param('{"credsStore": 1}', "Expected `str`, got `int` - at `$.credsStore`", id="creds-store-type"),
        pytest.param('{"auths": {"r.io": {"auth": "%%%"}}}', 'invalid "auth" for "r.io"', id="auth-not-base64"),
        pytest.param(
            json.dumps({"auths": {"r.io": {"auth": b64("no-colon-secret")}}}),
            'invalid "auth" for "r.io"',
            id="auth-without-colon",
        ),
        pytest.param(
            json.dumps({"auths": {"r.io": {"auth": b64(":only-secret")}}}),
            'invalid "auth" for "r.io"',
            id="auth-without-username",
        ),
    ],
)
async def test_malformed_config(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)
    source = DockerConfigCredentials({"DOCKER_CONFIG": str(tmp_path)})
    with pytest.raises(CredentialError) as caught:
        await source.resolve("registry.example.com", "team/app")
    assert caught.value.message == f"load docker config {path}: {reason}"


async def test_empty_file_is_an_empty_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("\n")
    source = DockerConfigCredentials({"DOCKER_CONFIG": str(tmp_path)})
    assert await source.resolve("registry.example.com", "team/app") == ANONYMOUS


def entry(user: str) -> dict[str, Any]:
    return {"auths": {"registry.example.com": {"username": user, "password": "x"}}}


@pytest.mark.parametrize(
    ("files", "env", "expected_user"),
    [
        pytest.param(
            {"docker/config.json": entry("docker")}, {"DOCKER_CONFIG": "docker"}, "docker", id="docker-config"
        ),
        pytest.param({"home/.docker/config.json": entry("home")}, {"HOME": "home"}, "home", id="home"),
        pytest.param(
            {"docker/config.json": entry("docker"), "home/.docker/config.json": entry("home")},
            {"DOCKER_CONFIG": "docker", "HOME": "home"},
            "docker",
            id="docker-config-over-home",
        ),
        pytest.param(
            {"home/.docker/config.json": entry("home"), "podman.json": entry("podman")},
            {"DOCKER_CONFIG": "missing", "HOME": "home", "REGISTRY_AUTH_FILE": "podman.json"},
            "podman",
            id="docker-config-dir-replaces-home",
        ),
        pytest.param(
            {"podman.json": entry("podman")},
            {"HOME": "home", "REGISTRY_AUTH_FILE": "podman.json"},
            "podman",
            id="registry-auth-file",
        ),
        pytest.param(
            {"run/containers/auth.json": entry("xdg")},
            {"HOME": "home", "XDG_RUNTIME_DIR": "run"},
            "xdg",
            id="xdg-runtime-dir",
        ),
        pytest.param(
            {"podman.json": entry("podman"), "run/containers/auth.json": entry("xdg")},
            {"REGISTRY_AUTH_FILE": "podman.json", "XDG_RUNTIME_DIR": "run"},
            "podman",
            id="registry-auth-file-over-xdg",
        ),
        pytest.param(
            {"home/.docker/config.json": entry("home"), "podman.json": entry("podman")},
            {"HOME": "home", "REGISTRY_AUTH_FILE": "podman.json"},
            "home",
            id="docker-over-podman",
        ),
        pytest.param(
            {"podman.json": entry("podman")},
            {"HOME": "home", "REGISTRY_AUTH_FILE": "elsewhere.json", "XDG_RUNTIME_DIR": "run"},
            "",
            id="nothing-anywhere",
        ),
        pytest.param({}, {}, "", id="empty-environment"),
    ],
)
async def test_config_location(
    tmp_path: Path, files: dict[str, dict[str, Any]], env: dict[str, str], expected_user: str
) -> None:
    for name, config in files.items():
        write_config((tmp_path / name).parent, config, Path(name).name)
    source = DockerConfigCredentials({key: str(tmp_path / value) for key, value in env.items()})
    credential = await source.resolve("registry.example.com", "team/app")
    assert credential == (Credential(username=expected_user, password="x") if expected_user else ANONYMOUS)


async def test_env_defaults_to_process_environment_read_lazily(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = DockerConfigCredentials()
    write_config(tmp_path, entry("ambient"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert await source.resolve("registry.example.com", "") == Credential(username="ambient", password="x")


async def test_config_read_once_per_instance(tmp_path: Path) -> None:
    write_config(tmp_path, entry("first"))
    source = DockerConfigCredentials({"DOCKER_CONFIG": str(tmp_path)})
    assert await source.resolve("registry.example.com", "a") == Credential(username="first", password="x")
    write_config(tmp_path, entry("second"))
    assert await source.resolve("registry.example.com", "b") == Credential(username="first", password="x")
    fresh = DockerConfigCredentials({"DOCKER_CONFIG": str(tmp_path)})
    assert await fresh.resolve("registry.example.com", "b") == Credential(username="second", password="x")


def helper_env(tmp_path: Path, bin_dir: Path, config: dict[str, Any]) -> dict[str, str]:
    write_config(tmp_path / "docker", config)
    return {"DOCKER_CONFIG": str(tmp_path / "docker"), "PATH": str(bin_dir)}


@pytest.mark.parametrize(
    ("config", "registry", "repository", "expected", "calls"),
    [
        pytest.param(
            {"credsStore": "test"},
            "registry.example.com",
            "team/app",
            Credential(username="helper-user", password="helper-pass"),
            ["test get registry.example.com", "test get registry.example.com/team/app"],
            id="creds-store",
        ),
        pytest.param(
            {"credsStore": "test"},
            "tokens.example.com",
            "",
            Credential(identity_token="refresh-token"),
            ["test get tokens.example.com"],
            id="identity-token",
        ),
        pytest.param(
            {"credsStore": "test"},
            "index.docker.io",
            "library/alpine",
            Credential(username="hub-user", password="hub-pass"),
            [f"test get {HUB_KEY}", "test get index.docker.io/library/alpine"],
            id="docker-hub-server-address",
        ),
        pytest.param(
            {"credsStore": "test", "auths": {"unknown.example.com": {"username": "file", "password": "x"}}},
            "unknown.example.com",
            "team/app",
            ANONYMOUS,
            ["test get unknown.example.com", "test get unknown.example.com/team/app"],
            id="not-found-is-anonymous-and-hides-auths",
        ),
        pytest.param(
            {"credsStore": "none", "credHelpers": {"registry.example.com": "test"}},
            "registry.example.com",
            "team/app",
            Credential(username="helper-user", password="helper-pass"),
            ["none get registry.example.com/team/app", "test get registry.example.com"],
            id="cred-helpers-over-creds-store",
        ),
        pytest.param(
            {"credsStore": "test", "credHelpers": {"registry.example.com": "none"}},
            "registry.example.com",
            "team/app",
            ANONYMOUS,
            ["none get registry.example.com", "test get registry.example.com/team/app"],
            id="cred-helpers-hide-creds-store",
        ),
        pytest.param(
            {
                "credHelpers": {"registry.example.com": "test"},
                "auths": {"other.example.com": {"username": "file", "password": "x"}},
            },
            "other.example.com",
            "team/app",
            Credential(username="file", password="x"),
            [],
            id="cred-helpers-only-for-their-key",
        ),
    ],
)
async def test_credential_helpers(
    tmp_path: Path,
    bin_dir: Path,
    helper_log: Path,
    config: dict[str, Any],
    registry: str,
    repository: str,
    expected: Credential,
    calls: list[str],
) -> None:
    make_helper(bin_dir, "test", STORE_HELPER)
    make_helper(bin_dir, "none", 'print("credentials not found in native keychain")\nsys.exit(1)\n')
    source = DockerConfigCredentials(helper_env(tmp_path, bin_dir, config))
    results = await asyncio.gather(*(source.resolve(registry, repository) for _ in range(8)))
    assert results == [expected] * 8
    assert await source.resolve(registry, repository) == expected
    assert read_log(helper_log) == calls


async def test_helper_runs_once_per_key_across_repositories(tmp_path: Path, bin_dir: Path, helper_log: Path) -> None:
    make_helper(bin_dir, "test", STORE_HELPER)
    source = DockerConfigCredentials(helper_env(tmp_path, bin_dir, {"credsStore": "test"}))
    repositories = ["a", "b", "a", "b", "a"]
    results = await asyncio.gather(*(source.resolve("registry.example.com", repo) for repo in repositories))
    assert results == [Credential(username="helper-user", password="helper-pass")] * 5
    assert read_log(helper_log) == [
        "test get registry.example.com",
        "test get registry.example.com/a",
        "test get registry.example.com/b",
    ]


async def test_helper_found_on_env_path_not_process_path(
    tmp_path: Path, bin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_helper(bin_dir, "test", STORE_HELPER)
    monkeypatch.setenv("PATH", str(bin_dir))
    env = helper_env(tmp_path, bin_dir, {"credsStore": "test"})
    env["PATH"] = str(tmp_path / "empty")
    with pytest.raises(CredentialError) as caught:
        await DockerConfigCredentials(env).resolve("registry.example.com", "")
    assert "executable file not found" in caught.value.message


@pytest.mark.parametrize(
    ("helper_body", "reason"),
    [
        pytest.param(None, "docker-credential-test: executable file not found in $PATH", id="missing"),
        pytest.param(
            'print("leaked-secret")\nsys.stderr.write("  keychain locked  \\nmore detail\\n")\nsys.exit(2)\n',
            "exit status 2: keychain locked",
            id="fails-with-stderr",
        ),
        pytest.param('print("leaked-secret")\nsys.exit(1)\n', "exit status 1", id="fails-without-stderr"),
        pytest.param('print("leaked-secret {")\n', "malformed response", id="malformed-response"),
        pytest.param("time.sleep(30)\n", "no answer within 0.5s", id="timeout"),
    ],
)
async def test_helper_failures(
    tmp_path: Path, bin_dir: Path, monkeypatch: pytest.MonkeyPatch, helper_body: str | None, reason: str
) -> None:
    monkeypatch.setattr(dockerconfig, "_HELPER_TIMEOUT", 0.5)
    if helper_body is not None:
        make_helper(bin_dir, "test", helper_body)
    source = DockerConfigCredentials(helper_env(tmp_path, bin_dir, {"credHelpers": {"registry.example.com": "test"}}))
    with pytest.raises(CredentialError) as caught:
        await source.resolve("registry.example.com", "team/app")
    assert caught.value.message == (
        f'get credentials for "registry.example.com" from the "test" credential helper: {reason}'
    )
    assert "leaked-secret" not in str(caught.value)


async def test_secrets_stay_out_of_repr(tmp_path: Path) -> None:
    write_config(tmp_path, {"auths": {"registry.example.com": {"auth": b64("alice:top-secret")}}})
    credential = await DockerConfigCredentials({"DOCKER_CONFIG": str(tmp_path)}).resolve("registry.example.com", "")
    assert "top-secret" not in repr(credential)
