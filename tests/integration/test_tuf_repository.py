"""Proof that the loopback TUF repository is a real one, checked with the real python-tuf client.

Every check here runs ``tuf.ngclient.Updater`` -- the client the product uses -- against
``harness.tufrepo.TufRepository``, so a product test that sees the product fail against the
fixture can trust the fixture. The tests also pin down, as executable facts, what the product will
meet: the exact request sequence, the exception python-tuf raises for each failure, how its fetcher
treats proxy variables, and what sigstore-python's ``ClientTrustConfig.from_tuf`` writes where
(platformdirs user directories, not a directory the caller chooses).
"""

from __future__ import annotations

import hashlib
import os
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import pytest
import urllib3
from harness.forwardproxy import ForwardProxy
from harness.tufrepo import PLACEHOLDER_TRUSTED_ROOT, SIGNING_CONFIG, TRUSTED_ROOT, TufRepository
from sigstore._internal.tuf import DEFAULT_TUF_URL
from sigstore.errors import TUFError
from sigstore.models import ClientTrustConfig
from tuf.api.exceptions import (
    DownloadError,
    DownloadHTTPError,
    ExpiredMetadataError,
    LengthOrHashMismatchError,
    SlowRetrievalError,
    UnsignedMetadataError,
)
from tuf.api.metadata import Metadata, Root, Timestamp
from tuf.ngclient import Updater, Urllib3Fetcher

NEW_TRUSTED_ROOT = PLACEHOLDER_TRUSTED_ROOT.replace(b"[]", b"[ ]", 1)


def make_updater(repository: TufRepository, directory: Path) -> Updater:
    """An Updater as the product builds one: bootstrapped from root v1 copied into its metadata dir."""
    metadata_dir = directory / "metadata"
    metadata_dir.mkdir(parents=True, exist_ok=True)
    root_path = repository.write_root(metadata_dir / "root.json")
    return Updater(
        metadata_dir=str(metadata_dir),
        metadata_base_url=repository.url,
        target_base_url=repository.targets_url,
        target_dir=str(directory / "targets"),
        bootstrap=root_path.read_bytes(),
    )


def fetch(repository: TufRepository, directory: Path, name: str = TRUSTED_ROOT) -> bytes:
    updater = make_updater(repository, directory)
    updater.refresh()
    info = updater.get_targetinfo(name)
    assert info is not None
    return Path(updater.download_target(info)).read_bytes()


def files_under(directory: Path) -> set[str]:
    return {str(path.relative_to(directory)) for path in directory.rglob("*") if path.is_file() or path.is_symlink()}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the happy path ----------------------------------------------------------------------------------


def test_fresh_client_fetches_the_trusted_root_with_sigstores_request_sequence(
    tuf_repository: TufRepository, tmp_path: Path
) -> None:
    assert fetch(tuf_repository, tmp_path) == PLACEHOLDER_TRUSTED_ROOT
    assert tuf_repository.requests == [
        "/2.root.json",  # 404: version 1 is the newest root
        "/timestamp.json",
        "/1.snapshot.json",
        "/1.targets.json",
        f"/targets/{sha256(PLACEHOLDER_TRUSTED_ROOT)}.trusted_root.json",
    ]
    assert tuf_repository.target_path(TRUSTED_ROOT) == tuf_repository.requests[-1]
    # Everything the client wrote is under the two directories it was given.
    assert files_under(tmp_path) == {
        "metadata/root.json",  # a symlink to root_history/<newest>.root.json
        "metadata/root_history/1.root.json",
        "metadata/timestamp.json",
        "metadata/snapshot.json",
        "metadata/targets.json",
        "targets/trusted_root.json",
    }
    assert os.readlink(tmp_path / "metadata" / "root.json") == "root_history/1.root.json"


def test_cached_root_json_alone_can_be_the_trust_anchor(tuf_repository: TufRepository, tmp_path: Path) -> None:
    tuf_repository.write_root(tmp_path / "metadata" / "root.json")
    updater = Updater(
        metadata_dir=str(tmp_path / "metadata"),
        metadata_base_url=tuf_repository.url,
        target_base_url=tuf_repository.targets_url,
        target_dir=str(tmp_path / "targets"),
        bootstrap=None,  # python-tuf 7 makes this keyword mandatory; None means "trust metadata_dir/root.json"
    )
    info = updater.get_targetinfo(TRUSTED_ROOT)  # refreshes implicitly
    assert info is not None
    assert Path(updater.download_target(info)).read_bytes() == PLACEHOLDER_TRUSTED_ROOT


def test_unversioned_snapshot_and_targets_are_not_served(tuf_repository: TufRepository) -> None:
    """Consistent snapshots only: a client must ask for ``<N>.snapshot.json``, as for Sigstore's CDN."""
    pool = urllib3.PoolManager()
    assert pool.request("GET", f"{tuf_repository.url}/1.root.json").data == tuf_repository.root_json
    assert pool.request("GET", f"{tuf_repository.url}/timestamp.json").status == 200
    for path in ("/root.json", "/snapshot.json", "/targets.json", "/targets/trusted_root.json"):
        assert pool.request("GET", tuf_repository.url + path).status == 404, path


def test_set_target_reaches_a_new_client_and_a_cached_one(tuf_repository: TufRepository, tmp_path: Path) -> None:
    assert fetch(tuf_repository, tmp_path / "cached") == PLACEHOLDER_TRUSTED_ROOT
    tuf_repository.set_target(TRUSTED_ROOT, NEW_TRUSTED_ROOT)
    tuf_repository.set_target(SIGNING_CONFIG, b"{}")

    assert fetch(tuf_repository, tmp_path / "fresh") == NEW_TRUSTED_ROOT
    tuf_repository.clear_requests()
    assert fetch(tuf_repository, tmp_path / "cached") == NEW_TRUSTED_ROOT
    assert tuf_repository.requests == [
        "/2.root.json",
        "/timestamp.json",
        "/3.snapshot.json",  # two publications since version 1
        "/3.targets.json",
        f"/targets/{sha256(NEW_TRUSTED_ROOT)}.trusted_root.json",
    ]
    assert fetch(tuf_repository, tmp_path / "fresh", SIGNING_CONFIG) == b"{}"


def test_client_bootstrapped_from_v1_walks_the_root_rotation(tuf_repository: TufRepository, tmp_path: Path) -> None:
    tuf_repository.rotate_root()
    assert tuf_repository.root_version == 2

    # The rotation matters: the new timestamp is not signed by any key root v1 trusts.
    root_v1 = Metadata[Root].from_bytes(tuf_repository.root_json)
    timestamp = Metadata[Timestamp].from_bytes(
        urllib3.PoolManager().request("GET", f"{tuf_repository.url}/timestamp.json").data
    )
    with pytest.raises(UnsignedMetadataError):
        root_v1.verify_delegate("timestamp", timestamp)
    tuf_repository.clear_requests()

    updater = make_updater(tuf_repository, tmp_path)
    updater.refresh()
    assert tuf_repository.requests[:3] == ["/2.root.json", "/3.root.json", "/timestamp.json"]
    metadata = tmp_path / "metadata"
    assert os.readlink(metadata / "root.json") == "root_history/2.root.json"
    assert (metadata / "root_history" / "2.root.json").read_bytes() == tuf_repository.root_bytes(2)
    info = updater.get_targetinfo(TRUSTED_ROOT)
    assert info is not None
    assert Path(updater.download_target(info)).read_bytes() == PLACEHOLDER_TRUSTED_ROOT


# -- misbehaviour and the exception each one raises -----------------------------------------------------


def test_expired_timestamp_raises_expired_metadata_error(tuf_repository: TufRepository, tmp_path: Path) -> None:
    tuf_repository.expire_timestamp()
    with pytest.raises(ExpiredMetadataError, match=r"timestamp\.json is expired"):
        make_updater(tuf_repository, tmp_path).refresh()
    # Checked when the snapshot would be loaded: the expired timestamp was fetched, nothing after it.
    assert tuf_repository.requests == ["/2.root.json", "/timestamp.json"]


def test_tampered_target_raises_length_or_hash_mismatch(tuf_repository: TufRepository, tmp_path: Path) -> None:
    tuf_repository.tamper_target(TRUSTED_ROOT)
    updater = make_updater(tuf_repository, tmp_path)
    updater.refresh()  # the metadata is fine
    info = updater.get_targetinfo(TRUSTED_ROOT)
    assert info is not None
    with pytest.raises(LengthOrHashMismatchError):
        updater.download_target(info)
    assert not (tmp_path / "targets" / TRUSTED_ROOT).exists()  # verified before it is written

    tuf_repository.set_target(TRUSTED_ROOT, NEW_TRUSTED_ROOT)  # a new file, untampered
    assert fetch(tuf_repository, tmp_path / "again") == NEW_TRUSTED_ROOT


def test_offline_503_raises_download_http_error(tuf_repository: TufRepository, tmp_path: Path) -> None:
    tuf_repository.offline = True
    with pytest.raises(DownloadHTTPError) as caught:
        make_updater(tuf_repository, tmp_path).refresh()
    assert caught.value.status_code == 503
    # Only 403/404 on the next root mean "no newer root"; a 503 there ends the refresh, and urllib3
    # does not retry a 503 that carries no Retry-After.
    assert tuf_repository.requests == ["/2.root.json"]

    tuf_repository.offline = False
    assert fetch(tuf_repository, tmp_path / "online") == PLACEHOLDER_TRUSTED_ROOT


def test_refused_connection_raises_slow_retrieval_error(tuf_repository: TufRepository, tmp_path: Path) -> None:
    """Surprising but true: urllib3's NewConnectionError subclasses ConnectTimeoutError."""
    tuf_repository.offline = "refused"
    with pytest.raises(SlowRetrievalError) as caught:
        make_updater(tuf_repository, tmp_path).refresh()
    assert isinstance(caught.value, DownloadError)
    cause = caught.value.__cause__
    assert isinstance(cause, urllib3.exceptions.MaxRetryError)
    assert isinstance(cause.reason, urllib3.exceptions.NewConnectionError)
    assert tuf_repository.requests == []

    tuf_repository.offline = False  # the same port again
    assert fetch(tuf_repository, tmp_path / "online") == PLACEHOLDER_TRUSTED_ROOT


# -- python-tuf's fetcher: proxies and timeouts ---------------------------------------------------------


def test_fetcher_sends_loopback_through_http_proxy_unless_no_proxy_names_it(
    tuf_repository: TufRepository, forward_proxy: ForwardProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unlike Go, python-tuf has no loopback exception: only a ``no_proxy`` entry keeps 127.0.0.1 direct.

    The variables are read (urllib's ``getproxies``) when the fetcher is built, i.e. in ``Updater()``.
    """
    forward_proxy.route("127.0.0.1", tuf_repository.port)
    monkeypatch.setenv("HTTP_PROXY", forward_proxy.url())
    assert fetch(tuf_repository, tmp_path / "proxied") == PLACEHOLDER_TRUSTED_ROOT
    assert [request.path for request in forward_proxy.requests] == tuf_repository.requests

    forward_proxy.clear_requests()
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    assert fetch(tuf_repository, tmp_path / "direct") == PLACEHOLDER_TRUSTED_ROOT
    assert forward_proxy.requests == []


def test_fetcher_default_timeout_is_30_seconds_per_connect_and_per_read_gap() -> None:
    """No UpdaterConfig knob: a different timeout needs ``Updater(fetcher=Urllib3Fetcher(socket_timeout=...))``."""
    assert Urllib3Fetcher().socket_timeout == 30


# -- sigstore-python's own helper --------------------------------------------------------------------


def sigstore_production_target(name: str) -> bytes:
    """The trusted root / signing config sigstore-python embeds for Sigstore's production instance."""
    return resources.files("sigstore._store").joinpath(quote(DEFAULT_TUF_URL, safe=""), name).read_bytes()


@pytest.fixture
def sigstore_repository(tuf_repository: TufRepository) -> TufRepository:
    """The fixture repository with real Sigstore content: ``from_tuf`` parses both targets."""
    tuf_repository.set_target(TRUSTED_ROOT, sigstore_production_target(TRUSTED_ROOT))
    tuf_repository.set_target(SIGNING_CONFIG, sigstore_production_target(SIGNING_CONFIG))
    return tuf_repository


@pytest.fixture
def fake_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for variable in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(variable, raising=False)
    return home


def sigstore_files(quoted_url: str) -> set[str]:
    return {
        f"data/sigstore-python/tuf/{quoted_url}/root.json",
        f"data/sigstore-python/tuf/{quoted_url}/root_history/1.root.json",
        f"data/sigstore-python/tuf/{quoted_url}/timestamp.json",
        f"data/sigstore-python/tuf/{quoted_url}/snapshot.json",
        f"data/sigstore-python/tuf/{quoted_url}/targets.json",
        f"cache/sigstore-python/tuf/{quoted_url}/trusted_root.json",
        f"cache/sigstore-python/tuf/{quoted_url}/signing_config.v0.2.json",
    }


def test_sigstore_from_tuf_writes_into_the_users_data_and_cache_dirs(
    sigstore_repository: TufRepository, fake_home: Path, tmp_path: Path
) -> None:
    bootstrap = sigstore_repository.write_root(tmp_path / "bootstrap" / "root.json")
    config = ClientTrustConfig.from_tuf(sigstore_repository.url, offline=False, bootstrap_root=bootstrap)
    assert config.trusted_root.get_fulcio_certs()  # real content, parsed

    quoted = quote(sigstore_repository.url, safe="")
    written = {path.replace(".local/share/", "data/").replace(".cache/", "cache/") for path in files_under(fake_home)}
    assert written == sigstore_files(quoted)


def test_sigstore_from_tuf_follows_absolute_xdg_data_and_cache_homes(
    sigstore_repository: TufRepository, fake_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg" / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg" / "cache"))
    bootstrap = sigstore_repository.write_root(tmp_path / "bootstrap" / "root.json")
    ClientTrustConfig.from_tuf(sigstore_repository.url, offline=False, bootstrap_root=bootstrap)

    assert files_under(tmp_path / "xdg") == sigstore_files(quote(sigstore_repository.url, safe=""))
    assert files_under(fake_home) == set()


def test_sigstore_from_tuf_wraps_tuf_failures_in_tuf_error(
    sigstore_repository: TufRepository, fake_home: Path, tmp_path: Path
) -> None:
    sigstore_repository.expire_timestamp()
    bootstrap = sigstore_repository.write_root(tmp_path / "bootstrap" / "root.json")
    with pytest.raises(TUFError, match="Failed to refresh TUF metadata") as caught:
        ClientTrustConfig.from_tuf(sigstore_repository.url, offline=False, bootstrap_root=bootstrap)
    assert isinstance(caught.value.__cause__, ExpiredMetadataError)
