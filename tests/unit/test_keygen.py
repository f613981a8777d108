"""`keygen` on a real filesystem: file bytes, modes, refusal to overwrite, rollback and display paths."""

from __future__ import annotations

import errno
import json
import os
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from fluxmirror.auth.jwk import load_signing_key, sign_jwt
from fluxmirror.auth.keygen import KeyPairPaths, write_key_pair
from fluxmirror.errors import KeygenError


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(params=[0o000, 0o022, 0o077], ids=["umask-000", "umask-022", "umask-077"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    mask: int = request.param
    previous = os.umask(mask)
    try:
        yield mask
    finally:
        os.umask(previous)


def mode(path: Path | str) -> int:
    return stat.S_IMODE(Path(path).stat().st_mode)


def only_key(path: Path | str) -> dict[str, Any]:
    keys: list[dict[str, Any]] = json.loads(Path(path).read_bytes())["keys"]
    assert len(keys) == 1
    return keys[0]


def fail_open_of(name: str, monkeypatch: pytest.MonkeyPatch, error: int = errno.EACCES) -> None:
    real_open = os.open

    def fake_open(path: str, flags: int, mode: int = 0o777) -> int:
        if Path(path).name == name:
            raise OSError(error, os.strerror(error), path)
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", fake_open)


def test_writes_both_files_with_a_shared_uuid6_kid(cwd: Path) -> None:
    paths = write_key_pair(".")
    assert paths == KeyPairPaths(private="privkey.json", public="pubkey.json")
    private, public = only_key(cwd / "privkey.json"), only_key(cwd / "pubkey.json")
    assert list(private) == ["use", "kty", "kid", "crv", "alg", "x", "d"]
    assert list(public) == ["use", "kty", "kid", "crv", "alg", "x"]
    assert private["kid"] == public["kid"]
    assert uuid.UUID(private["kid"]).version == 6
    assert str(uuid.UUID(private["kid"])) == private["kid"]
    assert private["x"] == public["x"]
    for path in (cwd / "privkey.json", cwd / "pubkey.json"):
        data = path.read_bytes()
        assert data == (json.dumps(json.loads(data), indent=2) + "\n").encode()


def test_each_run_gets_a_new_key_and_a_later_kid(tmp_path: Path) -> None:
    first = write_key_pair(str(tmp_path / "one"))
    second = write_key_pair(str(tmp_path / "two"))
    assert only_key(first.private)["d"] != only_key(second.private)["d"]
    assert only_key(first.private)["kid"] < only_key(second.private)["kid"]


def test_modes_are_exact_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    paths = write_key_pair(str(tmp_path / "keys"))
    assert mode(paths.private) == 0o600
    assert mode(paths.public) == 0o644


def test_directories_are_created_recursively_with_0755(tmp_path: Path, umask: int) -> None:
    target = tmp_path / "a" / "b" / "c"
    paths = write_key_pair(str(target))
    assert Path(paths.private).parent == target
    for directory in (tmp_path / "a", tmp_path / "a" / "b", target):
        # Like Go's os.MkdirAll, the umask still applies to directories.
        assert mode(directory) == 0o755 & ~umask


def test_existing_directory_is_fine(tmp_path: Path) -> None:
    write_key_pair(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["privkey.json", "pubkey.json"]


@pytest.mark.parametrize(
    ("output_dir", "private", "public"),
    [
        ("./keys/registry", "keys/registry/privkey.json", "keys/registry/pubkey.json"),
        (".", "privkey.json", "pubkey.json"),
        ("./", "privkey.json", "pubkey.json"),
        ("a/../b", "b/privkey.json", "b/pubkey.json"),
        ("keys//registry/", "keys/registry/privkey.json", "keys/registry/pubkey.json"),
        ("x/./y/..", "x/privkey.json", "x/pubkey.json"),
    ],
)
def test_display_paths_are_lexically_cleaned(cwd: Path, output_dir: str, private: str, public: str) -> None:
    assert write_key_pair(output_dir) == KeyPairPaths(private=private, public=public)
    assert (cwd / private).is_file()
    assert (cwd / public).is_file()


def test_parent_relative_and_absolute_paths(cwd: Path) -> None:
    (cwd / "work").mkdir()
    os.chdir(cwd / "work")
    assert write_key_pair("../out").private == "../out/privkey.json"
    assert (cwd / "out" / "privkey.json").is_file()
    absolute = write_key_pair(f"/{cwd}//abs/./")
    assert absolute == KeyPairPaths(private=f"{cwd}/abs/privkey.json", public=f"{cwd}/abs/pubkey.json")


def test_empty_output_dir_is_refused() -> None:
    with pytest.raises(KeygenError) as caught:
        write_key_pair("")
    assert str(caught.value) == "output directory is required"


@pytest.mark.parametrize("existing", ["privkey.json", "pubkey.json"])
def test_refuses_to_overwrite_either_file(cwd: Path, existing: str) -> None:
    (cwd / "keys").mkdir()
    (cwd / "keys" / existing).write_text("precious")
    with pytest.raises(KeygenError) as caught:
        write_key_pair("./keys")
    assert str(caught.value) == f"keys/{existing} already exists, refusing to overwrite"
    assert sorted(p.name for p in (cwd / "keys").iterdir()) == [existing]
    assert (cwd / "keys" / existing).read_text() == "precious"


def test_a_dangling_symlink_counts_as_existing(cwd: Path) -> None:
    (cwd / "pubkey.json").symlink_to(cwd / "nowhere")
    with pytest.raises(KeygenError, match=r"^pubkey\.json already exists, refusing to overwrite$"):
        write_key_pair(".")
    assert not (cwd / "privkey.json").exists()
    assert not (cwd / "nowhere").exists()


def test_a_file_appearing_after_the_check_is_not_overwritten(cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (cwd / "privkey.json").write_text("raced")
    monkeypatch.setattr(os.path, "lexists", lambda _path: False)
    with pytest.raises(KeygenError) as caught:
        write_key_pair(".")
    assert str(caught.value) == "write private key set: open privkey.json: file exists"
    assert (cwd / "privkey.json").read_text() == "raced"
    assert not (cwd / "pubkey.json").exists()


def test_private_file_is_rolled_back_when_the_public_open_fails(cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fail_open_of("pubkey.json", monkeypatch)
    with pytest.raises(KeygenError) as caught:
        write_key_pair("keys")
    assert str(caught.value) == "write public key set: open keys/pubkey.json: permission denied"
    assert list((cwd / "keys").iterdir()) == []


def test_private_open_failure_writes_nothing(cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fail_open_of("privkey.json", monkeypatch, errno.EROFS)
    with pytest.raises(KeygenError) as caught:
        write_key_pair(".")
    assert str(caught.value) == "write private key set: open privkey.json: read-only file system"
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize(("failing", "label"), [("privkey.json", "private"), ("pubkey.json", "public")])
def test_a_failed_write_leaves_no_partial_file(
    cwd: Path, monkeypatch: pytest.MonkeyPatch, failing: str, label: str
) -> None:
    real_open, real_write = os.open, os.write
    names: dict[int, str] = {}

    def tracking_open(path: str, flags: int, mode: int = 0o777) -> int:
        fd = real_open(path, flags, mode)
        names[fd] = Path(path).name
        return fd

    def short_then_full_disk(fd: int, data: bytes | memoryview) -> int:
        if names.get(fd) != failing:
            return real_write(fd, data)
        if len(data) > 10:
            return real_write(fd, bytes(data[:10]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "open", tracking_open)
    monkeypatch.setattr(os, "write", short_then_full_disk)
    with pytest.raises(KeygenError) as caught:
        write_key_pair(".")
    assert str(caught.value) == f"write {label} key set: write {failing}: no space left on device"
    assert list(cwd.iterdir()) == []


def test_short_writes_are_completed(cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:7])))
    write_key_pair(".")
    assert only_key(cwd / "privkey.json")["kid"] == only_key(cwd / "pubkey.json")["kid"]


def test_output_dir_that_is_a_file(cwd: Path) -> None:
    (cwd / "plain").write_text("")
    with pytest.raises(KeygenError) as caught:
        write_key_pair("./plain")
    assert str(caught.value) == "create output directory: mkdir plain: not a directory"


def test_output_dir_below_a_file_names_the_file(cwd: Path) -> None:
    (cwd / "plain").write_text("")
    with pytest.raises(KeygenError) as caught:
        write_key_pair("plain/sub/dir")
    assert str(caught.value) == "create output directory: mkdir plain: not a directory"


def test_mkdir_failure_is_reported_like_go(cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Path, mode: int = 0o777) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(KeygenError) as caught:
        write_key_pair("new/dir")
    assert str(caught.value) == "create output directory: mkdir new: permission denied"


def test_generated_pair_signs_a_jwt_pyjwt_verifies(tmp_path: Path) -> None:
    """The acceptance test: privkey.json signs, pubkey.json (as a JWKS) verifies, matched by kid."""
    paths = write_key_pair(str(tmp_path / "keys" / "registry"))
    key = load_signing_key(Path(paths.private).read_text())
    now = time.time()
    token = sign_jwt(
        key,
        issuer="https://my-issuer.example",
        subject="ci-pusher",
        audience="registry.example.com",
        lifetime_seconds=8760 * 3600,
        now=now,
    )

    kid = only_key(paths.public)["kid"]
    header_segment = token.split(".")[0]
    assert jwt.utils.base64url_decode(header_segment) == (f'{{"alg":"EdDSA","kid":"{kid}","typ":"JWT"}}'.encode())
    header = jwt.get_unverified_header(token)
    assert list(header) == ["alg", "kid", "typ"]

    public_set = jwt.PyJWKSet.from_json(Path(paths.public).read_text())
    claims = jwt.decode(
        token,
        key=public_set[header["kid"]],
        algorithms=["EdDSA"],
        audience="registry.example.com",
        issuer="https://my-issuer.example",
        options={"require": ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"]},
    )
    assert list(claims) == ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"]
    assert claims["sub"] == "ci-pusher"
    assert claims["aud"] == ["registry.example.com"]
    assert claims["iat"] == int(now)
    assert claims["nbf"] == int(now) - 30
    assert claims["exp"] == int(now) + 8760 * 3600
