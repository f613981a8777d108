"""The command layer: flags, config-source resolution, one-line errors and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fluxmirror import __version__
from fluxmirror.cli import main

BIN = Path(sys.executable).parent
VALID = (
    "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\n"
    "artifacts:\n  - source: 127.0.0.1:1/aa/bb\n    destination: 127.0.0.1:1/bb\n"
    "hosts:\n  - host: localhost:5000\n    credential:\n      value: ${TOKEN}\n"
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLUX_MIRROR_CONFIG", raising=False)
    monkeypatch.setenv("TOKEN", "t0ken")


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "mirror.yaml"
    path.write_text(VALID, encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_synced_that_config(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """The config was loaded and run: its unreachable source (a closed loopback port) fails the plan."""
    code, out, err = run(capsys, *argv)
    assert (code, err) == (1, "")
    assert out.startswith(
        '✗ 127.0.0.1:1/aa/bb — plan failed: list tags 127.0.0.1:1/aa/bb: Get "https://127.0.0.1:1/v2/": '
    )
    assert out.splitlines()[-1].startswith("Summary: 1 failed in ")


def assert_one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out, err) == (1, "", f"✗ {message}\n")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["-o", "xml"], "unsupported output format 'xml', must be one of: text, yaml, json"),
        (["--concurrency", "0"], "--concurrency must be greater than 0"),
        (["--parallel-entries", "0"], "--parallel-entries must be greater than 0"),
        (["--parallel-entries", "-1"], "--parallel-entries must be greater than 0"),
        (
            ["--parallel-entries", "junk"],
            'invalid argument "junk" for "--parallel-entries" flag: strconv.ParseInt: parsing "junk": invalid syntax',
        ),
        (["--compare-concurrency", "0"], "--compare-concurrency must be greater than 0"),
        (
            ["--compare-concurrency", "1.5"],
            'invalid argument "1.5" for "--compare-concurrency" flag: strconv.ParseInt: parsing "1.5": invalid syntax',
        ),
        (["--retries", "-1"], "--retries must be greater than or equal to 0"),
        (["--timeout", "0s"], "--timeout must be greater than 0"),
        (["--timeout", "5"], 'invalid argument "5" for "--timeout" flag: time: missing unit in duration "5"'),
        (["--drift-exit-code", "256"], "--drift-exit-code must be between 0 and 255"),
        (["--drift-exit-code", "-1"], "--drift-exit-code must be between 0 and 255"),
    ],
    ids=[
        "output",
        "concurrency",
        "parallel-entries-zero",
        "parallel-entries-negative",
        "parallel-entries-junk",
        "compare-concurrency-zero",
        "compare-concurrency-junk",
        "retries",
        "timeout-zero",
        "timeout-syntax",
        "drift-high",
        "drift-negative",
    ],
)
def test_sync_flag_validation(
    capsys: pytest.CaptureFixture[str], config_file: Path, flags: list[str], message: str
) -> None:
    assert_one_line_error(capsys, ["sync", str(config_file), *flags], message)


@pytest.mark.parametrize(
    "argv",
    [
        ["sync", "CONFIG", "--dry-run", "--timeout", ""],
        ["--timeout", "", "sync", "CONFIG", "--dry-run"],
        ["login", "-f", "CONFIG", "--timeout", ""],
        ["secret", "regcred", "-f", "CONFIG", "--timeout", ""],
    ],
    ids=["sync", "global", "login", "secret"],
)
def test_empty_timeout_is_refused(capsys: pytest.CaptureFixture[str], config_file: Path, argv: list[str]) -> None:
    argv = [str(config_file) if arg == "CONFIG" else arg for arg in argv]
    assert_one_line_error(capsys, argv, 'invalid argument "" for "--timeout" flag: time: invalid duration ""')


HEAD = "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\n"
ENTRY = "artifacts:\n  - source: 127.0.0.1:1/aa/bb\n    destination: 127.0.0.1:1/bb\n"
LAUGHS = "".join(
    [HEAD, "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"]
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10)]
)
HOSTILE: list[tuple[str, str, str]] = [
    ("alias-bomb", LAUGHS, "parse config: yaml: document contains excessive aliasing"),
    (
        "key-is-a-sequence",
        HEAD + ENTRY + "? [a, b]\n: 1\n",
        "parse config: yaml: line 6, column 3: invalid map key: a sequence cannot be a key",
    ),
    (
        "key-is-a-mapping",
        HEAD + ENTRY + "? {a: 1}\n: 1\n",
        "parse config: yaml: line 6, column 3: invalid map key: a mapping cannot be a key",
    ),
    (
        "semver-5000-digits",
        HEAD + ENTRY + f"    selector:\n      semver: '>={'1' * 5000}'\n",
        f'artifacts[0]: selector: semver ">={"1" * 5000}" is not a valid constraint: constraint parser error',
    ),
    (
        "chart-version-5000-digits",
        HEAD
        + f"charts:\n  - name: x\n    source: https://a.io\n    destination: oci://a.io/c\n    version: '{'2' * 5000}'\n",
        f'charts[0]: version "{"2" * 5000}" is not a valid semver constraint: constraint parser error',
    ),
    (
        "nul-in-from-path",
        HEAD + ENTRY + 'hosts:\n  - host: a.io\n    credential:\n      fromPath: "token\\0"\n',
        'hosts[0] "a.io": credential.fromPath: the path contains a NUL character',
    ),
    (
        "newline-in-source",
        HEAD + 'artifacts:\n  - source: "ghcr.io/a/b\\nc"\n    destination: 127.0.0.1:1/bb\n',
        'artifacts[0]: source "ghcr.io/a/b\\nc" is not a valid OCI repository: '
        "repository can only contain the characters `abcdefghijklmnopqrstuvwxyz0123456789_-./`: a/b\\nc",
    ),
    (
        "registry-port-not-a-number",
        HEAD + "artifacts:\n  - source: ghcr.io:abc/a/b\n    destination: 127.0.0.1:1/bb\n",
        'artifacts[0]: source "ghcr.io:abc/a/b" is not a valid OCI repository: '
        "registries must be valid RFC 3986 URI authorities: ghcr.io:abc",
    ),
    (
        "registry-port-range",
        HEAD + "artifacts:\n  - source: ghcr.io/a/b\n    destination: 127.0.0.1:65536/bb\n",
        'artifacts[0]: destination "127.0.0.1:65536/bb" is not a valid OCI repository: '
        'invalid port ":65536" in registry "127.0.0.1:65536" (out of range 0-65535)',
    ),
    (
        "chart-port-not-a-number",
        HEAD + "charts:\n  - name: x\n    source: https://a.io:x1/\n    destination: oci://a.io/c\n",
        'charts[0]: source: invalid URL: parse "https://a.io:x1/": invalid port ":x1" after host',
    ),
    (
        "chart-port-range",
        HEAD + "charts:\n  - name: x\n    source: https://a.io\n    destination: oci://a.io:70000/c\n",
        'charts[0]: destination: invalid URL: parse "oci://a.io:70000/c": '
        'invalid port ":70000" after host (out of range 0-65535)',
    ),
    (
        "limit-past-64-bits",
        HEAD + ENTRY + "    selector:\n      limit: 99999999999999999999\n",
        "parse config: artifacts[0]: selector: limit: number out of range for a 64-bit integer",
    ),
    (
        "max-chunk-size-huge",
        HEAD + ENTRY + f"hosts:\n  - host: a.io\n    maxChunkSize: {'7' * 5000}\n",
        "parse config: hosts[0]: maxChunkSize: number out of range for a 64-bit integer",
    ),
    (
        "max-chunk-size-bytes-overflow",
        HEAD + ENTRY + "hosts:\n  - host: a.io\n    maxChunkSize: 9223372036854775807\n",
        "hosts[0]: maxChunkSize must be <= 9007199254740991 (its size in bytes must fit in 64 bits)",
    ),
    (
        "exp-overflow",
        HEAD + ENTRY + "hosts:\n  - host: a.io\n    credential:\n      jwkValue: '{}'\n      iss: i\n"
        "      sub: s\n      exp: 99999999999999999999h\n",
        'parse config: hosts[0]: credential: exp: time: invalid duration "99999999999999999999h"',
    ),
]


@pytest.mark.parametrize(("text", "message"), [case[1:] for case in HOSTILE], ids=[case[0] for case in HOSTILE])
@pytest.mark.parametrize("command", ["sync", "login"])
def test_hostile_config_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str, text: str, message: str
) -> None:
    path = tmp_path / "mirror.yaml"
    path.write_text(text, encoding="utf-8")
    argv = ["sync", str(path), "--dry-run"] if command == "sync" else ["login", "-f", str(path)]
    argv += ["--docker-config", str(tmp_path / "docker")] if command == "login" else []
    started = time.monotonic()
    assert_one_line_error(capsys, argv, message)
    assert time.monotonic() - started < 10
    assert not (tmp_path / "docker").exists()


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_dev_zero_as_a_config_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_error(capsys, ["sync", "/dev/zero", "--dry-run"], "read config: /dev/zero is larger than 10 MiB")
    assert_one_line_error(capsys, ["login", "-f", "/dev/zero"], "read config: /dev/zero is larger than 10 MiB")


def test_endless_stdin_is_one_line(config_file: Path) -> None:
    with subprocess.Popen(
        [BIN / "fluxmirror", "sync", "-", "--dry-run"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdin is not None
        try:
            for _ in range(20):
                process.stdin.write("#" * (1 << 20) + "\n")
        except BrokenPipeError:
            pass
        out, err = process.communicate(timeout=60)
    assert (process.returncode, out, err) == (1, "", "✗ read config: stdin is larger than 10 MiB\n")


def test_sync_non_integer_flag_is_one_line(capsys: pytest.CaptureFixture[str], config_file: Path) -> None:
    code, out, err = run(capsys, "sync", str(config_file), "--concurrency", "many")
    assert (code, out) == (1, "")
    assert err.startswith("✗ ") and err.count("\n") == 1 and "--concurrency" in err


def test_sync_needs_a_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_error(
        capsys,
        ["sync"],
        "config required: pass the config path as the first argument, pass '-' for stdin, or set FLUX_MIRROR_CONFIG",
    )


def test_sync_config_from_environment(
    capsys: pytest.CaptureFixture[str], config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLUX_MIRROR_CONFIG", str(config_file))
    assert_synced_that_config(capsys, ["sync"])


def test_sync_argument_wins_over_environment(
    capsys: pytest.CaptureFixture[str], config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLUX_MIRROR_CONFIG", "/nonexistent.yaml")
    assert_synced_that_config(capsys, ["sync", str(config_file)])


def test_sync_reports_config_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(VALID.replace("127.0.0.1:1/bb", "127.0.0.1:1/BB"), encoding="utf-8")
    assert_one_line_error(
        capsys,
        ["sync", str(path)],
        'artifacts[0]: destination "127.0.0.1:1/BB" is not a valid OCI repository: '
        "repository can only contain the characters `abcdefghijklmnopqrstuvwxyz0123456789_-./`: BB",
    )


@pytest.mark.parametrize("position", ["before", "after"])
def test_no_envsubst_is_global(
    capsys: pytest.CaptureFixture[str], config_file: Path, monkeypatch: pytest.MonkeyPatch, position: str
) -> None:
    monkeypatch.delenv("TOKEN")
    assert_one_line_error(
        capsys,
        ["sync", str(config_file)],
        'substitute environment variables: variable not set (strict mode): "TOKEN"',
    )
    argv = (
        ["--no-envsubst", "sync", str(config_file)]
        if position == "before"
        else ["sync", str(config_file), "--no-envsubst"]
    )
    assert_synced_that_config(capsys, argv)


def test_global_timeout_before_the_command_is_validated(capsys: pytest.CaptureFixture[str], config_file: Path) -> None:
    assert_one_line_error(
        capsys,
        ["--timeout", "soon", "sync", str(config_file)],
        'invalid argument "soon" for "--timeout" flag: time: invalid duration "soon"',
    )


def test_login_config_sources(
    capsys: pytest.CaptureFixture[str], config_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    docker = tmp_path / "docker"
    stored = f"✔ stored registry token for localhost:5000 in {docker / 'config.json'}\n"
    assert run(capsys, "login", "-f", str(config_file), "--docker-config", str(docker)) == (0, stored, "")
    monkeypatch.setenv("FLUX_MIRROR_CONFIG", str(config_file))
    assert run(capsys, "login", "--docker-config", str(docker)) == (0, stored, "")


def test_login_defaults_to_a_config_next_to_the_executable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    executable = tmp_path / "flux-mirror"
    monkeypatch.setattr(sys, "argv", [str(executable)])
    assert_one_line_error(capsys, ["login"], f"open config: open {executable}.config: no such file or directory")


def test_login_accepts_a_hosts_only_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "hosts.yaml"
    path.write_text(VALID.split("artifacts:")[0] + "hosts:\n  - host: a.io\n    maxChunkSize: 1024\n", encoding="utf-8")
    assert run(capsys, "login", "-f", str(path)) == (
        0,
        "• skipping a.io: no credential configured (TLS-only host)\n",
        "",
    )
    assert_one_line_error(
        capsys,
        ["sync", str(path)],
        "config has no entries: at least one of 'charts' or 'artifacts' must be set",
    )


def test_secret_needs_a_name(capsys: pytest.CaptureFixture[str], config_file: Path) -> None:
    """cobra's `ExactArgs(1)`: its message, one line, exit 1."""
    assert_one_line_error(capsys, ["secret", "-f", str(config_file)], "accepts 1 arg(s), received 0")
    assert_one_line_error(capsys, ["secret", "a", "b", "-f", str(config_file)], "accepts 1 arg(s), received 2")


def test_secret_accepts_kubectl_flags(
    capsys: pytest.CaptureFixture[str], config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.setenv("FLUXMIRROR_SERVICEACCOUNT_DIR", str(tmp_path / "no-serviceaccount"))
    argv = [
        "secret",
        "regcred",
        "-f",
        str(config_file),
        "-n",
        "flux-system",
        "--context",
        "kind",
        "--as",
        "admin",
    ]
    assert_one_line_error(
        capsys,
        [*argv, "--insecure-skip-tls-verify"],
        "build kubernetes client config: invalid configuration: context was not found for specified context: kind",
    )


def test_keygen_writes_and_refuses_to_overwrite(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "keygen", "-o", "./keys/registry")
    assert (code, err) == (0, "")
    assert out == (
        "✔ private key set written to: keys/registry/privkey.json\n"
        "✔ public key set written to: keys/registry/pubkey.json\n"
    )
    assert (tmp_path / "keys/registry/privkey.json").stat().st_mode & 0o777 == 0o600
    assert_one_line_error(
        capsys,
        ["keygen", "-o", "keys/registry"],
        "keys/registry/privkey.json already exists, refusing to overwrite",
    )


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("text", f"{__version__}\n"),
        ("json", json.dumps({"version": __version__}, indent=2) + "\n"),
        ("yaml", f"version: {__version__}\n"),
    ],
)
def test_version(capsys: pytest.CaptureFixture[str], output: str, expected: str) -> None:
    assert run(capsys, "version", "-o", output) == (0, expected, "")


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["frobnicate"], "frobnicate"),
        (["sync", "--frobnicate"], "--frobnicate"),
        (["version", "-o", "xml"], "xml"),
    ],
    ids=["unknown-command", "unknown-flag", "bad-version-output"],
)
def test_usage_errors_are_one_line_with_exit_1(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (1, "")
    assert err.startswith("✗ ") and err.count("\n") == 1 and fragment in err


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sync", "--help")
    assert code == 0
    for flag in (
        "--output",
        "--concurrency",
        "--retries",
        "--timeout",
        "--overwrite",
        "--drift-exit-code",
        "--dry-run",
        "--verbose",
        "--no-progress",
        "--insecure",
        "--no-envsubst",
    ):
        assert flag in out


@pytest.mark.parametrize("script", ["fluxmirror", "flux-mirror"])
def test_console_scripts(script: str, config_file: Path) -> None:
    version = subprocess.run([BIN / script, "version"], capture_output=True, text=True, check=False)
    assert (version.returncode, version.stdout) == (0, f"{__version__}\n")
    from_stdin = subprocess.run(
        [BIN / script, "sync", "-"],
        input=config_file.read_text(),
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "TOKEN": "x"},
    )
    assert (from_stdin.returncode, from_stdin.stderr) == (1, "")
    assert from_stdin.stdout.startswith('✗ 127.0.0.1:1/aa/bb — plan failed: list tags 127.0.0.1:1/aa/bb: Get "')
