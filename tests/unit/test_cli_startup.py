"""`sync` fails before anything is synced when a host's JWK cannot be read or parsed, as the reference does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fluxmirror.cli import main

CONFIG = """apiVersion: mirror.plugin.fluxcd.io/v1beta1
kind: Config
artifacts:
  - source: 127.0.0.1:1/aa/bb
    destination: 127.0.0.1:1/bb
hosts:
  - host: fine.example
    credential:
      value: t0k
  - host: 127.0.0.1:1
    credential:
{credential}
      iss: https://ci.example
      sub: mirror
"""


def write_config(directory: Path, credential: str) -> Path:
    path = directory / "mirror.yaml"
    path.write_text(CONFIG.format(credential=credential), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("credential", "message"),
    [
        pytest.param(
            "      jwkPath: keys/privkey.json",
            'auth host "127.0.0.1:1": read jwkPath: open {dir}/keys/privkey.json: no such file or directory',
            id="missing-file",
        ),
        pytest.param(
            '      jwkValue: \'{"kty": "OKP", "crv": "Ed25519", "x": "AA"}\'',
            'auth host "127.0.0.1:1": parse jwkValue: JWK is a public key: a private key (the "d" member) is required to sign',
            id="public-key-value",
        ),
    ],
)
@pytest.mark.parametrize(
    "flags",
    [[], ["-o", "json"], ["-o", "yaml"], ["--verbose"], ["--dry-run"]],
    ids=["text", "json", "yaml", "verbose", "dry-run"],
)
def test_unusable_jwk_ends_the_run_before_any_sync(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, credential: str, message: str, flags: list[str]
) -> None:
    config = write_config(tmp_path, credential)
    code = main(["sync", str(config), "--no-progress", *flags])
    captured = capsys.readouterr()
    # No live line, no summary and no report: the closed port of the source was never tried.
    assert (code, captured.out, captured.err) == (1, "", f"✗ {message.format(dir=tmp_path)}\n")


def test_unusable_jwk_through_the_console_entry(tmp_path: Path) -> None:
    config = write_config(tmp_path, "      jwkValue: '{\"keys\": []}'")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-m", "fluxmirror", "sync", str(config), "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == '✗ auth host "127.0.0.1:1": parse jwkValue: JWK set must contain exactly one key, got 0\n'


def test_a_good_jwk_still_syncs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fluxmirror.auth.keygen import write_key_pair

    write_key_pair(str(tmp_path / "keys"))
    config = write_config(tmp_path, "      jwkPath: keys/privkey.json")
    code = main(["sync", str(config), "--no-progress", "-o", "json"])
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    # The run went on to the (unreachable) source, and the report says so.
    assert code == 1 and report["report"]["results"][0]["status"] == "failed"
