"""`login`: what lands in the Docker config, through which store, and the exact lines printed.

Credential helpers are real executables on a private PATH that record what they received, so the
helper protocol is checked from the helper's side; JWTs are verified with pyjwt, not our own code.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from fluxmirror.auth.keygen import write_key_pair
from fluxmirror.auth.providers.aws import ECR_HOST
from fluxmirror.cli import main

HEADER = "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\n"
SECRET = "s3cret-Pa55"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A private, empty PATH so no helper from the developer's machine is ever detected or run."""
    monkeypatch.delenv("FLUX_MIRROR_CONFIG", raising=False)
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SECRET", SECRET)
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))


def write_config(tmp_path: Path, hosts: str) -> Path:
    path = tmp_path / "hosts.yaml"
    path.write_text(HEADER + "hosts:\n" + textwrap.dedent(hosts), encoding="utf-8")
    return path


BEARER = """\
  - host: bearer.example.com
    credential:
      value: ${SECRET}
"""
PASSWORD = """\
  - host: registry.example.com
    username: robot
    credential:
      value: ${SECRET}
"""
TLS_ONLY = """\
  - host: tls.example.com
    tls:
      serverAuth:
        value: pem
"""


def make_helper(tmp_path: Path, name: str, *, fail: str = "") -> Path:
    """`docker-credential-<name>` appending `[argv, stdin JSON]` to the returned log; `fail` makes it exit 1."""
    log = tmp_path / f"{name}.log"
    script = tmp_path / "bin" / f"docker-credential-{name}"
    script.write_text(
        textwrap.dedent(
            f"""\
            #!{sys.executable}
            import json, sys
            received = json.loads(sys.stdin.read())
            with open({str(log)!r}, "a") as out:
                out.write(json.dumps([sys.argv[1:], received]) + "\\n")
            if {fail!r}:
                print({fail!r})
                sys.exit(1)
            """
        )
    )
    script.chmod(0o755)
    return log


def helper_calls(log: Path) -> list[Any]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def login(capsys: pytest.CaptureFixture[str], config: Path, docker: Path, *flags: str) -> tuple[int, str, str]:
    return run(capsys, "login", "-f", str(config), "--docker-config", str(docker), *flags)


def read(docker: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((docker / "config.json").read_text())
    return document


def basic(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def test_fresh_config_gets_tab_indented_private_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    docker = tmp_path / "new" / "docker"
    code, out, err = login(capsys, write_config(tmp_path, BEARER + PASSWORD), docker)
    path = docker / "config.json"
    assert (code, err) == (0, "")
    assert out == (
        f"✔ stored registry token for bearer.example.com in {path}\n✔ stored credential for registry.example.com in {path}\n"
    )
    assert path.read_text() == (
        "{\n"
        '\t"auths": {\n'
        '\t\t"bearer.example.com": {\n'
        f'\t\t\t"registrytoken": "{SECRET}"\n'
        "\t\t},\n"
        '\t\t"registry.example.com": {\n'
        f'\t\t\t"auth": "{basic("robot", SECRET)}"\n'
        "\t\t}\n"
        "\t}\n"
        "}"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(docker.stat().st_mode) == 0o700
    assert sorted(p.name for p in docker.iterdir()) == ["config.json"]  # no temp file left behind


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_every_missing_docker_config_directory_is_created_private(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask: int
) -> None:
    """Like Go's os.MkdirAll(dir, 0700): each directory created on the way is 0700, not only the last."""
    existing = tmp_path / "existing"
    existing.mkdir()
    existing.chmod(0o751)
    monkeypatch.chdir(existing)
    previous = os.umask(umask)
    try:
        code, out, err = run(capsys, "login", "-f", str(write_config(tmp_path, BEARER)), "--docker-config", "a/b/c")
    finally:
        os.umask(previous)
    assert (code, err) == (0, "")
    assert out == "✔ stored registry token for bearer.example.com in a/b/c/config.json\n"
    for created in ("a", "a/b", "a/b/c"):
        assert stat.S_IMODE((existing / created).stat().st_mode) == 0o700, created
    assert stat.S_IMODE(existing.stat().st_mode) == 0o751
    assert stat.S_IMODE((existing / "a/b/c/config.json").stat().st_mode) == 0o600


def test_existing_docker_config_directories_keep_their_modes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a").chmod(0o755)
    (tmp_path / "a" / "b").chmod(0o750)
    assert login(capsys, write_config(tmp_path, BEARER), tmp_path / "a" / "b" / "c" / "d")[0] == 0
    assert [stat.S_IMODE((tmp_path / p).stat().st_mode) for p in ("a", "a/b", "a/b/c", "a/b/c/d")] == [
        0o755,
        0o750,
        0o700,
        0o700,
    ]


def test_docker_config_json_that_never_ends_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "config.json").symlink_to("/dev/zero")
    code, out, err = login(capsys, write_config(tmp_path, BEARER), docker)
    assert (code, out, err) == (1, "", f"✗ load docker config: {docker / 'config.json'} is larger than 10 MiB\n")


def test_existing_file_keeps_unrelated_keys_entries_and_mode(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    docker = tmp_path / "docker"
    docker.mkdir()
    path = docker / "config.json"
    existing = {
        "proxies": {"default": {"httpProxy": "http://proxy:3128"}},
        "auths": {
            "other.example.com": {"auth": basic("a", "b")},
            "registry.example.com": {"auth": basic("old", "stale"), "registrytoken": "stale"},
        },
        "currentContext": "remote",
    }
    path.write_text(json.dumps(existing))
    path.chmod(0o640)
    code, out, _ = login(capsys, write_config(tmp_path, PASSWORD), docker)
    assert (code, out) == (0, f"✔ stored credential for registry.example.com in {path}\n")
    assert read(docker) == existing | {
        "auths": {
            "other.example.com": {"auth": basic("a", "b")},
            "registry.example.com": {"auth": basic("robot", SECRET)},
        }
    }
    assert list(read(docker)) == ["proxies", "auths", "currentContext"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_symlinked_config_replaces_the_target(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    docker = tmp_path / "docker"
    docker.mkdir()
    target = tmp_path / "real.json"
    target.write_text("{}")
    (docker / "config.json").symlink_to(target)
    assert login(capsys, write_config(tmp_path, BEARER), docker)[0] == 0
    assert (docker / "config.json").is_symlink()
    assert json.loads(target.read_text()) == {"auths": {"bearer.example.com": {"registrytoken": SECRET}}}


def test_docker_config_location(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = str(write_config(tmp_path, BEARER))
    assert run(capsys, "login", "-f", config)[1].endswith(f"in {tmp_path / 'home' / '.docker' / 'config.json'}\n")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "env"))
    assert run(capsys, "login", "-f", config)[1].endswith(f"in {tmp_path / 'env' / 'config.json'}\n")
    flagged = tmp_path / "flag"
    assert run(capsys, "login", "-f", config, "--docker-config", str(flagged))[1].endswith(
        f"in {flagged / 'config.json'}\n"
    )
    assert (tmp_path / "env" / "config.json").is_file() and (flagged / "config.json").is_file()


def test_configured_helper_receives_the_credential(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log = make_helper(tmp_path, "test")
    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "config.json").write_text(json.dumps({"credsStore": "test"}))
    code, out, _ = login(capsys, write_config(tmp_path, BEARER + PASSWORD), docker)
    assert code == 0
    assert out.splitlines() == [
        f"✔ stored registry token for bearer.example.com in {docker / 'config.json'}",
        '✔ stored credential for registry.example.com via the "test" credential helper',
    ]
    assert helper_calls(log) == [
        [["store"], {"ServerURL": "registry.example.com", "Username": "robot", "Secret": SECRET}]
    ]
    assert read(docker) == {
        "credsStore": "test",
        "auths": {"bearer.example.com": {"registrytoken": SECRET}, "registry.example.com": {}},
    }
    assert SECRET not in (docker / "config.json").read_text().replace(f'"registrytoken": "{SECRET}"', "")


def test_cred_helpers_entry_wins_over_creds_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store_log, specific_log = make_helper(tmp_path, "store"), make_helper(tmp_path, "specific")
    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "config.json").write_text(
        json.dumps({"credsStore": "store", "credHelpers": {"registry.example.com": "specific"}})
    )
    _, out, _ = login(capsys, write_config(tmp_path, PASSWORD), docker)
    assert out == '✔ stored credential for registry.example.com via the "specific" credential helper\n'
    assert len(helper_calls(specific_log)) == 1 and helper_calls(store_log) == []


def test_plaintext_bypasses_the_helper(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log = make_helper(tmp_path, "test")
    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "config.json").write_text(json.dumps({"credsStore": "test"}))
    _, out, _ = login(capsys, write_config(tmp_path, PASSWORD), docker, "--plaintext")
    assert out == f"✔ stored credential for registry.example.com in {docker / 'config.json'}\n"
    assert read(docker) == {"credsStore": "test", "auths": {"registry.example.com": {"auth": basic("robot", SECRET)}}}
    assert helper_calls(log) == []


def test_helper_is_auto_detected_on_a_fresh_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    if sys.platform != "linux":
        pytest.skip("the Linux detection rule: docker-credential-pass when `pass` is installed")
    log = make_helper(tmp_path, "pass")
    (tmp_path / "bin" / "pass").write_text("#!/bin/sh\n")
    (tmp_path / "bin" / "pass").chmod(0o755)
    docker = tmp_path / "docker"
    _, out, _ = login(capsys, write_config(tmp_path, PASSWORD), docker)
    assert out == '✔ stored credential for registry.example.com via the "pass" credential helper\n'
    assert read(docker) == {"auths": {"registry.example.com": {}}, "credsStore": "pass"}
    assert helper_calls(log)[0][1]["Secret"] == SECRET


@pytest.mark.parametrize(
    ("existing", "flags"),
    [
        pytest.param({"auths": {"other.example.com": {}}}, [], id="has-auths"),
        pytest.param({}, ["--plaintext"], id="plaintext"),
    ],
)
def test_no_auto_detection(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, existing: dict[str, Any], flags: list[str]
) -> None:
    log = make_helper(tmp_path, "pass")
    make_helper(tmp_path, "secretservice")
    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "config.json").write_text(json.dumps(existing))
    _, out, _ = login(capsys, write_config(tmp_path, PASSWORD), docker, *flags)
    assert out == f"✔ stored credential for registry.example.com in {docker / 'config.json'}\n"
    assert "credsStore" not in read(docker) and helper_calls(log) == []


def test_without_pass_secretservice_is_detected_only_when_installed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    if sys.platform != "linux":
        pytest.skip("Linux detection rule")
    make_helper(tmp_path, "pass")  # the helper alone is not enough: the `pass` tool is missing
    docker = tmp_path / "docker"
    _, out, _ = login(capsys, write_config(tmp_path, PASSWORD), docker)
    assert out.endswith(f"in {docker / 'config.json'}\n")
    make_helper(tmp_path, "secretservice")
    (docker / "config.json").unlink()
    _, out, _ = login(capsys, write_config(tmp_path, PASSWORD), docker)
    assert out == '✔ stored credential for registry.example.com via the "secretservice" credential helper\n'
    assert read(docker)["credsStore"] == "secretservice"


def test_bearer_host_never_goes_to_a_helper(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log = make_helper(tmp_path, "test")
    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "config.json").write_text(json.dumps({"credHelpers": {"bearer.example.com": "test"}}))
    _, out, _ = login(capsys, write_config(tmp_path, BEARER), docker)
    assert out == f"✔ stored registry token for bearer.example.com in {docker / 'config.json'}\n"
    assert read(docker)["auths"] == {"bearer.example.com": {"registrytoken": SECRET}}
    assert helper_calls(log) == []


def test_host_selection_in_flag_order(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = write_config(tmp_path, BEARER + PASSWORD + TLS_ONLY)
    docker = tmp_path / "docker"
    code, out, _ = login(
        capsys,
        config,
        docker,
        "--host",
        "tls.example.com",
        "--host",
        "registry.example.com",
        "--host",
        "tls.example.com",
    )
    assert code == 0
    assert out.splitlines() == [
        "• skipping tls.example.com: no credential configured (TLS-only host)",
        f"✔ stored credential for registry.example.com in {docker / 'config.json'}",
    ]
    assert list(read(docker)["auths"]) == ["registry.example.com"]


def test_tls_only_and_chunk_only_hosts_are_skipped_without_writing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = write_config(tmp_path, TLS_ONLY + "  - host: chunks.example.com\n    maxChunkSize: 1048576\n")
    docker = tmp_path / "docker"
    code, out, _ = login(capsys, config, docker)
    assert (code, out) == (
        0,
        "• skipping tls.example.com: no credential configured (TLS-only host)\n"
        "• skipping chunks.example.com: no credential configured (TLS-only host)\n",
    )
    assert not docker.exists()


@pytest.mark.parametrize(
    ("hosts", "flags", "message"),
    [
        pytest.param(
            BEARER, ["--host", "nope.example.com"], 'host "nope.example.com" not found in hosts', id="unknown"
        ),
        pytest.param("", [], "config has no hosts", id="no-hosts"),
        pytest.param(
            "  - host: a.io\n    provider: ecr\n",
            [],
            f"get ecr registry credentials for \"a.io\": invalid AWS registry: 'a.io'. must match {ECR_HOST.pattern}",
            id="provider-host-shape",
        ),
    ],
)
def test_selection_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, hosts: str, flags: list[str], message: str
) -> None:
    path = tmp_path / "hosts.yaml"
    path.write_text(HEADER + (f"hosts:\n{hosts}" if hosts else ""), encoding="utf-8")
    assert login(capsys, path, tmp_path / "docker", *flags) == (1, "", f"✗ {message}\n")
    assert not (tmp_path / "docker").exists()


def test_resolution_error_stops_at_the_first_failing_host(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "empty-token").write_text("  \n")
    config = write_config(
        tmp_path,
        BEARER + "  - host: broken.example.com\n    credential:\n      fromPath: empty-token\n" + PASSWORD,
    )
    docker = tmp_path / "docker"
    code, out, err = login(capsys, config, docker)
    assert code == 1
    assert out == f"✔ stored registry token for bearer.example.com in {docker / 'config.json'}\n"
    assert err == f'✗ host "broken.example.com": token file "{tmp_path / "empty-token"}" is empty\n'
    assert list(read(docker)["auths"]) == ["bearer.example.com"]


def test_from_path_token_is_read_and_trimmed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "token").write_text("\n  projected-token \n")
    config = write_config(tmp_path, "  - host: sa.example.com\n    credential:\n      fromPath: token\n")
    assert login(capsys, config, tmp_path / "docker")[0] == 0
    assert read(tmp_path / "docker")["auths"] == {"sa.example.com": {"registrytoken": "projected-token"}}


@pytest.mark.parametrize(("exp", "lifetime"), [("", 60), ("      exp: 2h\n", 7200)], ids=["default", "exp"])
def test_jwk_host_stores_a_verifiable_jwt(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, exp: str, lifetime: int
) -> None:
    write_key_pair(str(tmp_path / "keys"))
    config = write_config(
        tmp_path,
        "  - host: jwt.example.com:5000\n    credential:\n      jwkPath: keys/privkey.json\n"
        "      iss: ci\n      sub: pipeline\n" + exp,
    )
    before = int(time.time())
    assert login(capsys, config, tmp_path / "docker")[0] == 0
    token = read(tmp_path / "docker")["auths"]["jwt.example.com:5000"]["registrytoken"]
    public = jwt.PyJWKSet.from_json((tmp_path / "keys" / "pubkey.json").read_text())
    claims = jwt.decode(token, key=public.keys[0], algorithms=["EdDSA"], audience="jwt.example.com:5000", issuer="ci")
    assert claims["sub"] == "pipeline"
    assert before + lifetime <= claims["exp"] <= int(time.time()) + lifetime
    assert claims["exp"] - claims["iat"] == lifetime


def test_resolution_timeout(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    fifo = tmp_path / "token"
    os.mkfifo(fifo)  # opening a FIFO with no writer blocks, like a token that never arrives
    config = write_config(tmp_path, "  - host: slow.example.com\n    credential:\n      fromPath: token\n")
    code, out, err = login(capsys, config, tmp_path / "docker", "--timeout", "200ms")
    assert (code, out, err) == (1, "", '✗ host "slow.example.com": timed out after 200ms\n')
    with open(fifo, "w"):  # release the worker thread still blocked in open()
        pass


def test_helper_failure_is_reported_without_the_secret(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    make_helper(tmp_path, "test", fail="keychain locked")
    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "config.json").write_text('{"credsStore": "test"}')
    code, out, err = login(capsys, write_config(tmp_path, PASSWORD), docker)
    assert (code, out) == (1, "")
    assert err == (
        '✗ store docker credential for "registry.example.com": '
        "docker-credential-test store: exit status 1: keychain locked\n"
    )
    assert read(docker) == {"credsStore": "test"}


def test_helper_echoing_the_secret_is_not_quoted(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    make_helper(tmp_path, "test", fail=f"bad secret {SECRET}")
    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "config.json").write_text('{"credsStore": "test"}')
    _, _, err = login(capsys, write_config(tmp_path, PASSWORD), docker)
    assert err == '✗ store docker credential for "registry.example.com": docker-credential-test store: exit status 1\n'


def test_missing_helper(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "config.json").write_text('{"credHelpers": {"registry.example.com": "gone"}}')
    _, _, err = login(capsys, write_config(tmp_path, PASSWORD), docker)
    assert err == (
        '✗ store docker credential for "registry.example.com": '
        "docker-credential-gone: executable file not found in $PATH\n"
    )


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        pytest.param("{not json", "JSON is malformed", id="malformed"),
        pytest.param('{"auths": []}', "got `array` - at `$.auths`", id="auths-type"),
        pytest.param('{"credsStore": 1}', "Expected `str`, got `int` - at `$.credsStore`", id="store-type"),
    ],
)
def test_bad_docker_config_fails_before_minting(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, detail: str
) -> None:
    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "config.json").write_text(content)
    code, out, err = login(capsys, write_config(tmp_path, PASSWORD), docker)
    assert (code, out) == (1, "")
    assert err.startswith(f"✗ load docker config: {docker / 'config.json'}: ") and detail in err
    assert (docker / "config.json").read_text() == content


def test_empty_docker_config_file_counts_as_empty(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "config.json").write_text("")
    assert login(capsys, write_config(tmp_path, BEARER), docker)[0] == 0
    assert read(docker) == {"auths": {"bearer.example.com": {"registrytoken": SECRET}}}


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_unwritable_docker_config_dir(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    docker = tmp_path / "docker"
    docker.mkdir(mode=0o500)
    try:
        code, _, err = login(capsys, write_config(tmp_path, BEARER), docker)
    finally:
        docker.chmod(0o700)
    assert code == 1
    assert err.startswith('✗ store docker credential for "bearer.example.com": write ') and "permission denied" in err


def test_docker_config_below_a_file_fails_to_load(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    docker = tmp_path / "file" / "docker"
    code, out, err = login(capsys, write_config(tmp_path, BEARER), docker)
    assert (code, out) == (1, "")
    assert err == f"✗ load docker config: open {docker / 'config.json'}: not a directory\n"


def test_docker_config_dir_that_cannot_be_created(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    docker = tmp_path / "dangling" / "docker"
    code, out, err = login(capsys, write_config(tmp_path, BEARER), docker)
    assert (code, out) == (1, "")
    assert err == f'✗ store docker credential for "bearer.example.com": mkdir {tmp_path / "dangling"}: file exists\n'


def test_secrets_never_printed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = login(capsys, write_config(tmp_path, BEARER + PASSWORD), tmp_path / "docker")
    assert code == 0 and SECRET not in out + err and basic("robot", SECRET) not in out + err
