"""Normalisation: the loader hands every command trimmed, defaulted values, and only the loader does.

Validation still sees the config as written, so its messages quote the raw values; everything that
runs afterwards (sync, login, secret) takes the values as given and never trims them again.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jwt
import msgspec
import pytest

from fluxmirror.api.config import Config, Credential, Host, Selector
from fluxmirror.auth.credentials import Credential as Secret
from fluxmirror.auth.hosts import HostsCredentials, TokenMinter
from fluxmirror.auth.keygen import write_key_pair
from fluxmirror.cli import main
from fluxmirror.cli.hosts import select_hosts
from fluxmirror.config import load_config
from fluxmirror.config.normalize import normalize_config
from fluxmirror.errors import ConfigError
from fluxmirror.gocompat.semver import InvalidConstraintError
from fluxmirror.http.session import HttpSession
from fluxmirror.selection.tags import select_tags
from fluxmirror.sync.chart_plan import build_chart_entries

UNUSED_HTTP = HttpSession(user_agent="test")  # never opened: static sources make no request

HEADER = "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\n"
ARTIFACT = "artifacts:\n  - source: ghcr.io/a/b\n    destination: localhost:5000/bb\n"


def load(tmp_path: Path, body: str, *, require_entries: bool = True) -> Config:
    path = tmp_path / "mirror.yaml"
    path.write_text(HEADER + textwrap.dedent(body), encoding="utf-8")
    return load_config(str(path), require_entries=require_entries, env={}).config


def load_error(tmp_path: Path, body: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, body)
    return str(caught.value)


def selector_of(tmp_path: Path, selector: str) -> Selector:
    config = load(tmp_path, ARTIFACT + textwrap.indent(textwrap.dedent(selector), "    "))
    found = config.artifacts[0].selector
    assert found is not None
    return found


PADDED_HOSTS = """\
hosts:
  - host: " bearer.example.com "
    credential:
      value: "  t0ken\\n"
  - host: "\\tregistry.example.com"
    username: " robot "
    credential:
      value: " pa55 "
  - host: "chunky.example.com  "
    maxChunkSize: 64
"""


def test_hosts_and_static_credentials_are_trimmed(tmp_path: Path) -> None:
    hosts = load(tmp_path, PADDED_HOSTS, require_entries=False).hosts
    assert [(host.host, host.username) for host in hosts] == [
        ("bearer.example.com", ""),
        ("registry.example.com", "robot"),
        ("chunky.example.com", ""),
    ]
    assert [host.credential.value if host.credential else None for host in hosts] == ["t0ken", "pa55", None]


async def test_trimmed_hosts_are_the_keys_credentials_are_found_by(tmp_path: Path) -> None:
    hosts = load(tmp_path, PADDED_HOSTS, require_entries=False).hosts

    class _Ambient:
        async def resolve(self, registry: str, repository: str) -> Secret:
            return Secret(username="ambient", password="a")

    source = HostsCredentials(hosts, _Ambient(), UNUSED_HTTP)
    assert await source.resolve("bearer.example.com", "a/b") == Secret(registry_token="t0ken")
    assert await source.resolve("registry.example.com", "a/b") == Secret(username="robot", password="pa55")
    assert [host.host for host in select_hosts(hosts, ["registry.example.com", "chunky.example.com"])] == [
        "registry.example.com",
        "chunky.example.com",
    ]


def test_login_stores_under_the_trimmed_host(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("FLUX_MIRROR_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    config = tmp_path / "hosts.yaml"
    config.write_text(HEADER + PADDED_HOSTS, encoding="utf-8")
    docker = tmp_path / "docker"
    code = main(["login", "-f", str(config), "--docker-config", str(docker), "--plaintext"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[0] == f"✔ stored registry token for bearer.example.com in {docker / 'config.json'}"
    assert out.splitlines()[-1] == "• skipping chunky.example.com: no credential configured (TLS-only host)"
    auths = json.loads((docker / "config.json").read_text())["auths"]
    assert sorted(auths) == ["bearer.example.com", "registry.example.com"]


async def test_signed_token_claims_are_trimmed_and_the_audience_defaults_to_the_trimmed_host(tmp_path: Path) -> None:
    write_key_pair(str(tmp_path))
    keys = jwt.PyJWKSet.from_json((tmp_path / "pubkey.json").read_text())
    config = load(
        tmp_path,
        """\
        hosts:
          - host: " registry.example.com "
            credential:
              jwkPath: " privkey.json "
              iss: " https://ci.example "
              sub: "\\tpusher "
          - host: other.example.com
            credential:
              jwkValue: {jwk}
              iss: i
              sub: s
              aud: "  registry.internal  "
        """.replace("{jwk}", json.dumps(f" {(tmp_path / 'privkey.json').read_text()} ")),
        require_entries=False,
    )
    first, second = config.hosts
    assert first.credential is not None and second.credential is not None
    assert first.credential.jwkPath == str(tmp_path / "privkey.json")
    assert second.credential.jwkValue.startswith(" {")  # a JWK is JSON: kept as written
    assert (second.credential.iss, second.credential.sub, second.credential.aud) == ("i", "s", "registry.internal")
    token = await TokenMinter(first).token()
    claims = jwt.decode(token, keys.keys[0].key, algorithms=["EdDSA"], audience="registry.example.com")
    assert (claims["iss"], claims["sub"], claims["aud"]) == ("https://ci.example", "pusher", ["registry.example.com"])
    other = jwt.decode(
        await TokenMinter(second).token(), keys.keys[0].key, algorithms=["EdDSA"], audience="registry.internal"
    )
    assert other["aud"] == ["registry.internal"]


CHARTS = """\
charts:
  - name: " podinfo "
    source: " https://charts.example.com/stable/ "
    destination: " oci://localhost:5000/charts/ "
  - name: nginx
    source: https://charts.example.com
    destination: oci://localhost:5000/charts
    version: "   "
  - name: redis
    source: https://charts.example.com
    destination: oci://localhost:5000/charts
    version: " >=1.0 <2 "
  - name: kafka
    source: https://charts.example.com
    destination: oci://localhost:5000/charts
    version: ""
"""


async def test_charts_are_trimmed_and_a_blank_version_means_any(tmp_path: Path) -> None:
    charts = load(tmp_path, CHARTS).charts
    first = charts[0]
    # The source keeps its trailing `/`: index and chart URLs are resolved against it as written.
    assert (first.name, first.source, first.destination, first.version) == (
        "podinfo",
        "https://charts.example.com/stable/",
        "oci://localhost:5000/charts/",
        "*",
    )
    assert [chart.version for chart in charts[1:]] == ["*", ">=1.0 <2", "*"]
    entries = await build_chart_entries(charts)
    assert [(entry.name, entry.source, entry.destination) for entry in entries[:2]] == [
        ("podinfo", "https://charts.example.com/stable/podinfo", "localhost:5000/charts/podinfo"),
        ("nginx", "https://charts.example.com/nginx", "localhost:5000/charts/nginx"),
    ]
    assert entries[0].access.source == "https://charts.example.com/stable/"


@pytest.mark.parametrize(
    "selector",
    ["selector:\n  limit: 0\n", "selector:\n  sortBy: ''\n", "selector:\n  sortBy: '  '\n", "selector:\n  sortBy:\n"],
    ids=["absent", "empty", "blank", "null"],
)
def test_a_blank_sort_by_means_semver(tmp_path: Path, selector: str) -> None:
    assert selector_of(tmp_path, selector).sortBy == "semver"


def test_empty_sort_by_selects_by_semver_instead_of_failing_mid_sync(tmp_path: Path) -> None:
    # Before normalisation this selector passed validation, then select_tags raised ValueError.
    selector = selector_of(tmp_path, "selector:\n  sortBy: ''\n  limit: 0\n")
    assert select_tags(["1.2.0", "latest", "1.10.0"], selector).selected == ["1.10.0", "1.2.0"]


def test_selector_semver_is_trimmed_and_the_rest_kept_as_written(tmp_path: Path) -> None:
    selector = selector_of(
        tmp_path,
        """\
        selector:
          regex:
            pattern: ' -(?P<n>\\d+) '
            extract: ' $n'
          semver: "  >=1.0  "
          sortBy: numerical
        """,
    )
    assert (selector.semver, selector.sortBy) == (">=1.0", "numerical")
    assert selector.regex is not None and (selector.regex.pattern, selector.regex.extract) == (" -(?P<n>\\d+) ", " $n")
    assert selector_of(tmp_path, "selector:\n  semver: '   '\n").semver == ""
    assert load(tmp_path, ARTIFACT).artifacts[0].selector is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            ARTIFACT + "    selector:\n      sortBy: ' semver '\n",
            'artifacts[0]: selector: sortBy " semver " must be one of: semver, alphabetical, numerical',
        ),
        (
            ARTIFACT + "    selector:\n      semver: ' nope '\n",
            'artifacts[0]: selector: semver " nope " is not a valid constraint: ',
        ),
        (
            "charts:\n  - name: a\n    source: https://c.example\n    destination: oci://r.example/c\n"
            "    version: ' nope '\n",
            'charts[0]: version " nope " is not a valid semver constraint: ',
        ),
        (
            ARTIFACT + "hosts:\n  - host: ' a.example '\n    provider: ' ecr '\n",
            'hosts[0]: provider " ecr " must be one of: ecr, acr, gar',
        ),
        (
            ARTIFACT + "hosts:\n  - host: ' a.example '\n    credential:\n      fromPath: ' /etc/passwd '\n",
            'hosts[0] " a.example ": credential.fromPath: path escapes the config directory',
        ),
    ],
    ids=["sortBy", "semver", "chart-version", "provider", "confinement"],
)
def test_errors_quote_the_values_as_written(tmp_path: Path, body: str, message: str) -> None:
    assert load_error(tmp_path, body).startswith(message)


def test_normalising_twice_changes_nothing(tmp_path: Path) -> None:
    config = load(tmp_path, PADDED_HOSTS + CHARTS + ARTIFACT + "    selector:\n      sortBy: ''\n")
    assert normalize_config(config) == config


def test_commands_take_config_values_as_given() -> None:
    """Trimming lives in the loader only: a consumer handed a raw value uses it verbatim."""
    raw = Host(host=" a.example ", username=" bot ", credential=Credential(value=" t "))
    assert TokenMinter(raw).host == " a.example "
    with pytest.raises(ConfigError, match=r'host "a\.example" not found in hosts'):
        select_hosts([raw], ["a.example"])
    with pytest.raises(InvalidConstraintError):
        select_tags(["1.0.0"], Selector(semver="  "))
    with pytest.raises(ValueError, match='sortBy "" must be one of'):
        select_tags(["1.0.0"], Selector(sortBy=""))
    assert normalize_config(Config(apiVersion="v", kind="Config", hosts=[raw])).hosts == [
        msgspec.structs.replace(raw, host="a.example", username="bot", credential=Credential(value="t"))
    ]
