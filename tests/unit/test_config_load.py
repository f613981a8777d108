"""The load pipeline: read, substitute, parse, validate, confine (docs/config.md#load-pipeline, docs/config.md#path-confinement)."""

from __future__ import annotations

import io
import json
import os
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluxmirror.config import load_config, parse_config, yamldoc
from fluxmirror.config.load import MAX_CONFIG_BYTES
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


# ---- hostile input: caps and YAML limits (docs/config.md#yaml-limits) ----------------------------


def laughs(levels: int = 9, fanout: int = 9) -> str:
    """A "billion laughs": each anchor is a list of `fanout` aliases of the one before."""
    lines = ["a0: &a0 [" + ", ".join(["lol"] * fanout) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fanout) + "]" for i in range(1, levels + 1)]
    return HEADER + "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, laughs())
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(ConfigError) as caught:
            load_config(str(path), require_entries=True, env={})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(caught.value) == "parse config: yaml: document contains excessive aliasing"
    assert time.monotonic() - started < 5
    assert peak < 5 * 1024 * 1024


def test_small_alias_fan_out_is_fine() -> None:
    # go-yaml's rule lets a small document be made mostly of aliases, up to 99%: 1,361 nodes of which
    # 1,320 come from aliases pass (and fail later, as unknown fields); 13,583 with 13,530 do not.
    with pytest.raises(ConfigError, match=r'^parse config: unknown field "a0"$'):
        parse_config(laughs(levels=2, fanout=10), root=Path("/"), require_entries=False)
    with pytest.raises(ConfigError, match=r"^parse config: yaml: document contains excessive aliasing$"):
        parse_config(laughs(levels=3, fanout=10), root=Path("/"), require_entries=False)


def test_anchors_aliases_and_merge_keys_still_work(tmp_path: Path) -> None:
    text = HEADER + (
        "artifacts:\n"
        "  - &podinfo\n"
        "    source: ghcr.io/stefanprodan/podinfo\n"
        "    destination: localhost:5000/podinfo\n"
        "    selector: &six {semver: '6.x', limit: 2}\n"
        "  - <<: *podinfo\n"
        "    destination: localhost:5000/podinfo-copy\n"
        "  - <<: [{source: ghcr.io/a/first, selector: *six}, {source: ghcr.io/a/second, overwrite: true}]\n"
        "    destination: localhost:5000/merged\n"
    )
    artifacts = load_config(str(write(tmp_path, text)), require_entries=True, env={}).config.artifacts
    assert [(a.source, a.destination, a.overwrite) for a in artifacts] == [
        ("ghcr.io/stefanprodan/podinfo", "localhost:5000/podinfo", False),
        ("ghcr.io/stefanprodan/podinfo", "localhost:5000/podinfo-copy", False),  # written keys win
        ("ghcr.io/a/first", "localhost:5000/merged", True),  # earlier merged mappings win
    ]
    assert all(a.selector is not None and (a.selector.semver, a.selector.limit) == ("6.x", 2) for a in artifacts)


def test_a_key_written_twice_is_refused_even_next_to_a_merge() -> None:
    text = HEADER + "x: &x {a: 1}\ny:\n  <<: *x\n  b: 1\n  b: 2\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, root=Path("/"), require_entries=False)
    assert str(caught.value) == 'parse config: yaml: line 7, column 3: mapping key "b" is defined more than once'


def test_only_the_first_document_is_read(tmp_path: Path) -> None:
    text = HEADER + ARTIFACTS + "---\nnot: [valid\n"
    loaded = load_config(str(write(tmp_path, text)), require_entries=True, env={})
    assert [a.source for a in loaded.config.artifacts] == ["ghcr.io/a/b"]


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param("---\n", id="trailing-marker"),
        pytest.param("---", id="trailing-marker-without-newline"),
        pytest.param("--- \n# nothing here\n", id="trailing-marker-and-comment"),
        pytest.param("---\n---\n", id="empty-documents"),
        pytest.param(
            "---\n" + HEADER + "artifacts:\n  - source: ghcr.io/x/y\n    destination: r.io/y\n", id="second-config"
        ),
        pytest.param("---\nbogus: 1\n", id="second-with-unknown-key"),
        pytest.param("---\napiVersion: v0\n", id="second-with-bad-api-version"),
        pytest.param("...\n---\nnot: [valid\n", id="end-marker-then-broken"),
    ],
)
@pytest.mark.parametrize("head", ["", "---\n"], ids=["bare", "leading-marker"])
def test_later_documents_are_ignored(tmp_path: Path, head: str, tail: str) -> None:
    loaded = load_config(str(write(tmp_path, head + HEADER + ARTIFACTS + tail)), require_entries=True, env={})
    assert [(a.source, a.destination) for a in loaded.config.artifacts] == [("ghcr.io/a/b", "localhost:5000/bb")]


def test_substitution_still_covers_later_documents(tmp_path: Path) -> None:
    # As in the reference: the whole file is substituted before the first document is decoded.
    text = HEADER + ARTIFACTS + "---\nnote: ${UNSET}\n"
    with pytest.raises(ConfigError) as caught:
        load_config(str(write(tmp_path, text)), require_entries=True, env={})
    assert str(caught.value) == 'substitute environment variables: variable not set (strict mode): "UNSET"'


def test_node_count_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamldoc, "MAX_NODES", 1000)
    wide = HEADER + "x: [" + ", ".join(["a"] * 1000) + "]\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(wide, root=Path("/"), require_entries=False)
    assert str(caught.value) == "parse config: yaml: line 3, column 2984: document has more than 1000 nodes"
    # Aliases count as what they stand for: 40 nodes standing for over 1,000 are too many here.
    fanned = HEADER + "a: &a [" + ", ".join(["b"] * 30) + "]\nc: [" + ", ".join(["*a"] * 33) + "]\n"
    with pytest.raises(ConfigError, match=r"^parse config: yaml: document contains excessive aliasing$"):
        parse_config(fanned, root=Path("/"), require_entries=False)


@pytest.mark.parametrize("size", [MAX_CONFIG_BYTES + 1, 3 * MAX_CONFIG_BYTES])
def test_a_file_over_the_cap_is_refused(tmp_path: Path, size: int) -> None:
    path = tmp_path / "mirror.yaml"
    path.write_bytes(b"#" * size)
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), require_entries=True, env={})
    assert str(caught.value) == f"read config: {path} is larger than 10 MiB"


def test_a_file_at_the_cap_is_read(tmp_path: Path) -> None:
    text = HEADER + ARTIFACTS
    path = tmp_path / "mirror.yaml"
    path.write_bytes(text.encode() + b"#" * (MAX_CONFIG_BYTES - len(text)))
    assert load_config(str(path), require_entries=True, env={}).config.artifacts[0].source == "ghcr.io/a/b"


def test_stdin_over_the_cap_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config("-", require_entries=True, env={}, stdin=io.BytesIO(b" " * (MAX_CONFIG_BYTES + 1)))
    assert str(caught.value) == "read config: stdin is larger than 10 MiB"


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_dev_zero_is_refused_without_reading_it_all() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as caught:
            load_config("/dev/zero", require_entries=True, env={})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(caught.value) == "read config: /dev/zero is larger than 10 MiB"
    assert peak < 3 * MAX_CONFIG_BYTES


def test_substitution_cannot_grow_past_the_cap(tmp_path: Path) -> None:
    text = HEADER + ARTIFACTS + "# " + "${BIG}" * 200 + "\n"
    with pytest.raises(ConfigError) as caught:
        load_config(str(write(tmp_path, text)), require_entries=True, env={"BIG": "x" * 100_000})
    assert str(caught.value) == f"substitute environment variables: the result is longer than {MAX_CONFIG_BYTES} bytes"
    replaced = HEADER + "# ${BIG//x/${BIG}}\n"
    with pytest.raises(ConfigError, match="the result is longer than"):
        load_config(str(write(tmp_path, replaced)), require_entries=True, env={"BIG": "x" * 100_000})


# ---- fuzz: whatever the text, the loader returns a Config or raises ConfigError ------------------

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(1 << 70), max_value=1 << 70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["${X}", "$${X}", "${X:-d}", "6.x", "oci://a.io/b", "https://a.io:99999", "~", "<<", "*a", "&a"]),
)
_KEYS = st.one_of(
    st.sampled_from(
        [
            "apiVersion",
            "kind",
            "artifacts",
            "charts",
            "hosts",
            "source",
            "destination",
            "selector",
            "semver",
            "limit",
            "name",
            "version",
            "host",
            "credential",
            "value",
            "fromPath",
            "exp",
            "maxChunkSize",
            "tls",
            "<<",
        ]
    ),
    st.text(max_size=8),
)
_TREES = st.recursive(
    _SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5), max_leaves=25
)
_YAMLISH = st.lists(
    st.one_of(
        st.sampled_from(
            [
                *("apiVersion: mirror.plugin.fluxcd.io/v1beta1\n", "kind: Config\n", "artifacts:\n", "charts:\n"),
                *("hosts:\n", "  - ", "    ", "source: ", "destination: ", "&a ", "*a", "<<: ", "? ", ": ", "- "),
                *("[", "]", "{", "}", ", ", "\n", "---\n", "!!int ", "!!binary ", "!foo ", '"', "'", "\\", "\t"),
                *("#", "${X}", "%YAML 1.1\n"),
            ]
        ),
        st.text(max_size=6),
    ),
    max_size=30,
).map("".join)


def _load_or_config_error(text: str, root: Path) -> None:
    try:
        parse_config(text, root=root, require_entries=False, env={"X": "x"})
    except ConfigError as exc:
        assert exc.message and "\n" not in exc.message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_YAMLISH)
def test_fuzz_yamlish_text(text: str) -> None:
    _load_or_config_error(text, Path("/nonexistent-root"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=_TREES, head=st.booleans())
def test_fuzz_structures(tree: object, head: bool) -> None:
    document = {"apiVersion": "mirror.plugin.fluxcd.io/v1beta1", "kind": "Config", "artifacts": tree} if head else tree
    for text in (yaml.safe_dump(document), json.dumps(document, default=str)):
        _load_or_config_error(text, Path("/nonexistent-root"))
