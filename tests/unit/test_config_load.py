"""The load pipeline: read, substitute, parse, validate, confine (docs/config.md#load-pipeline, docs/config.md#path-confinement)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from fluxmirror.config import load_config
from fluxmirror.errors import ConfigError

HEADER = "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\n"
ARTIFACTS = "artifacts:\n  - source: ghcr.io/a/b\n    destination: localhost:5000/bb\n"


def write(directory: Path, text: str, name: str = "mirror.yaml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def token_host(path: str) -> str:
    return f"hosts:\n  - host: registry.example.com\n    credential:\n      fromPath: {path}\n"


def test_substitutes_variables_in_keys_values_and_comments(tmp_path: Path) -> None:
    text = HEADER + ARTIFACTS + "# owner: ${OWNER}\nhosts:\n  - host: ${HOST}\n    username: ${USER_NAME:-bot}\n"
    text += "    credential:\n      value: ${TOKEN}\n"
    env = {"OWNER": "me", "HOST": "quay.io", "TOKEN": "s3cret"}
    loaded = load_config(str(write(tmp_path, text)), require_entries=True, env=env)
    host = loaded.config.hosts[0]
    assert (host.host, host.username, host.credential and host.credential.value) == (
        "quay.io",
        "bot",
        "s3cret",
    )


def test_extract_templates_survive_substitution(tmp_path: Path) -> None:
    text = (
        HEADER + ARTIFACTS + "    selector:\n      regex:\n        pattern: '-(?P<ts>\\d+)$'\n        extract: '$ts'\n"
    )
    loaded = load_config(str(write(tmp_path, text)), require_entries=True, env={})
    selector = loaded.config.artifacts[0].selector
    assert selector is not None and selector.regex is not None
    assert selector.regex.extract == "$ts"


def test_every_unset_variable_is_named_at_once(tmp_path: Path) -> None:
    text = HEADER + ARTIFACTS + "hosts:\n  - host: ${HOST}\n    credential:\n      value: ${TOKEN}\n"
    with pytest.raises(ConfigError) as caught:
        load_config(str(write(tmp_path, text)), require_entries=True, env={})
    assert str(caught.value) == 'substitute environment variables: variables not set (strict mode): "HOST", "TOKEN"'


def test_no_envsubst_keeps_text_literal(tmp_path: Path) -> None:
    text = HEADER + ARTIFACTS + "hosts:\n  - host: a.io\n    credential:\n      value: ${TOKEN}\n"
    loaded = load_config(str(write(tmp_path, text)), require_entries=True, envsubst=False, env={})
    credential = loaded.config.hosts[0].credential
    assert credential is not None and credential.value == "${TOKEN}"


def test_stdin_uses_the_working_directory_as_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = HEADER + ARTIFACTS + token_host("tokens/registry")
    loaded = load_config("-", require_entries=True, env={}, stdin=io.BytesIO(text.encode()))
    credential = loaded.config.hosts[0].credential
    assert loaded.root == tmp_path
    assert credential is not None and credential.fromPath == str(tmp_path / "tokens" / "registry")


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(str(missing), require_entries=True)
    assert str(caught.value) == f"open config: open {missing}: no such file or directory"


def test_directory_is_not_a_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^open config: open .*: is a directory$"):
        load_config(str(tmp_path), require_entries=True)


def test_binary_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "mirror.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), require_entries=True)
    assert str(caught.value) == "parse config: the file is not UTF-8 text (byte 0)"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("token", "token"),
        ("./secrets/token", "secrets/token"),
        ("secrets/../token", "token"),
    ],
)
def test_paths_resolve_relative_to_the_config(tmp_path: Path, path: str, expected: str) -> None:
    config_dir = tmp_path / "conf"
    config_dir.mkdir()
    loaded = load_config(str(write(config_dir, HEADER + ARTIFACTS + token_host(path))), require_entries=True, env={})
    credential = loaded.config.hosts[0].credential
    assert credential is not None and credential.fromPath == str(config_dir / expected)


def test_every_path_field_is_confined(tmp_path: Path) -> None:
    text = (
        HEADER
        + ARTIFACTS
        + (
            "hosts:\n  - host: a.io\n    credential:\n      jwkPath: k.json\n      iss: i\n      sub: s\n"
            "    tls:\n      serverAuth:\n        fromPath: ca.pem\n      clientAuth:\n"
            "        certificate:\n          fromPath: c.pem\n        key:\n          fromPath: k.pem\n"
        )
    )
    loaded = load_config(str(write(tmp_path, text)), require_entries=True, env={})
    host = loaded.config.hosts[0]
    assert host.credential is not None and host.credential.jwkPath == str(tmp_path / "k.json")
    assert host.tls is not None and host.tls.serverAuth is not None and host.tls.clientAuth is not None
    assert host.tls.serverAuth.fromPath == str(tmp_path / "ca.pem")
    certificate, key = host.tls.clientAuth.certificate, host.tls.clientAuth.key
    assert certificate is not None and certificate.fromPath == str(tmp_path / "c.pem")
    assert key is not None and key.fromPath == str(tmp_path / "k.pem")


@pytest.mark.parametrize(
    ("hosts", "message"),
    [
        (
            token_host("../token"),
            'hosts[0] "registry.example.com": credential.fromPath: path escapes the config directory',
        ),
        (
            token_host("/etc/passwd"),
            'hosts[0] "registry.example.com": credential.fromPath: path escapes the config directory',
        ),
        (
            "hosts:\n  - host: a.io\n    tls:\n      serverAuth:\n        fromPath: a/../../ca.pem\n",
            'hosts[0] "a.io": tls.serverAuth.fromPath: path escapes the config directory',
        ),
        (
            "hosts:\n  - host: a.io\n    tls:\n      clientAuth:\n        certificate:\n          value: pem\n"
            "        key:\n          fromPath: ../k.pem\n",
            'hosts[0] "a.io": tls.clientAuth.key.fromPath: path escapes the config directory',
        ),
        (
            "hosts:\n  - host: a.io\n    credential:\n      jwkPath: ../../k.json\n      iss: i\n      sub: s\n",
            'hosts[0] "a.io": credential.jwkPath: path escapes the config directory',
        ),
    ],
    ids=["dotdot", "absolute-outside", "nested-dotdot", "client-key", "jwk"],
)
def test_escaping_paths_are_refused_at_load(tmp_path: Path, hosts: str, message: str) -> None:
    config_dir = tmp_path / "conf"
    config_dir.mkdir()
    with pytest.raises(ConfigError) as caught:
        load_config(str(write(config_dir, HEADER + ARTIFACTS + hosts)), require_entries=True, env={})
    assert str(caught.value) == message


def test_absolute_path_inside_the_root_is_fine(tmp_path: Path) -> None:
    loaded = load_config(
        str(write(tmp_path, HEADER + ARTIFACTS + token_host(str(tmp_path / "t")))),
        require_entries=True,
        env={},
    )
    credential = loaded.config.hosts[0].credential
    assert credential is not None and credential.fromPath == str(tmp_path / "t")


def test_symlink_pointing_outside_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "token").write_text("secret")
    config_dir = tmp_path / "conf"
    config_dir.mkdir()
    os.symlink(outside, config_dir / "linked")
    with pytest.raises(ConfigError, match=r"credential\.fromPath: path escapes the config directory$"):
        load_config(
            str(write(config_dir, HEADER + ARTIFACTS + token_host("linked/token"))),
            require_entries=True,
            env={},
        )


def test_symlink_inside_the_root_is_fine(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "alias")
    loaded = load_config(
        str(write(tmp_path, HEADER + ARTIFACTS + token_host("alias/token"))), require_entries=True, env={}
    )
    credential = loaded.config.hosts[0].credential
    assert credential is not None and credential.fromPath == str(tmp_path / "alias" / "token")


def test_missing_token_file_is_not_a_load_error(tmp_path: Path) -> None:
    loaded = load_config(str(write(tmp_path, HEADER + ARTIFACTS + token_host("later"))), require_entries=True, env={})
    assert not (tmp_path / "later").exists()
    assert loaded.config.hosts[0].credential is not None
