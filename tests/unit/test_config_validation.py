"""Every validation rule, in the order and with the one-line messages of docs/config.md#validation-order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from fluxmirror.config import parse_config
from fluxmirror.errors import ConfigError

HEAD = {"apiVersion": "mirror.plugin.fluxcd.io/v1beta1", "kind": "Config"}
ARTIFACT = {"source": "ghcr.io/fluxcd/flux-cli", "destination": "localhost:5000/flux-cli"}
CHART = {
    "name": "podinfo",
    "source": "https://charts.example.com",
    "destination": "oci://localhost:5000/charts",
}
TOKEN = {"value": "t0ken"}


def artifact(**fields: Any) -> dict[str, Any]:
    return {**HEAD, "artifacts": [{**ARTIFACT, **fields}]}


def chart(**fields: Any) -> dict[str, Any]:
    return {**HEAD, "charts": [{**CHART, **fields}]}


def host(**fields: Any) -> dict[str, Any]:
    return {**HEAD, "artifacts": [ARTIFACT], "hosts": [{"host": "registry.example.com", **fields}]}


def tls(**fields: Any) -> dict[str, Any]:
    return host(tls=fields)


def check(document: dict[str, Any] | str, tmp_path: Path, *, require_entries: bool = True) -> None:
    text = document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False)
    parse_config(text, root=tmp_path, require_entries=require_entries, env={})


CASES: list[tuple[str, dict[str, Any] | str, str]] = [
    (
        "api-version",
        {**HEAD, "apiVersion": "v1"},
        'apiVersion must be "mirror.plugin.fluxcd.io/v1beta1", got "v1"',
    ),
    ("kind", {**HEAD, "kind": "Report"}, 'kind must be "Config", got "Report"'),
    ("empty-document", "", 'apiVersion must be "mirror.plugin.fluxcd.io/v1beta1", got ""'),
    (
        "no-entries",
        {**HEAD, "hosts": [{"host": "a.io", "credential": TOKEN}]},
        "config has no entries: at least one of 'charts' or 'artifacts' must be set",
    ),
    # Decoding: strict keys and types, with the field path.
    ("unknown-top", {**HEAD, "artifact": []}, 'parse config: unknown field "artifact"'),
    (
        "unknown-nested",
        artifact(selector={"semvar": "1.x"}),
        'parse config: artifacts[0]: selector: unknown field "semvar"',
    ),
    (
        "wrong-type",
        artifact(selector={"limit": "two"}),
        "parse config: artifacts[0]: selector: limit: expected int, got str",
    ),
    (
        "number-for-string",
        chart(version=1.2),
        "parse config: charts[0]: version: expected str, got float (quote the value in YAML)",
    ),
    (
        "missing-source",
        {**HEAD, "artifacts": [{"destination": "a.io/b"}]},
        'parse config: artifacts[0]: missing required field "source"',
    ),
    ("list-expected", {**HEAD, "charts": {"name": "x"}}, "parse config: charts: expected array, got object"),
    (
        "bad-duration",
        host(credential={"jwkPath": "k.json", "iss": "i", "sub": "s", "exp": "2d"}),
        'parse config: hosts[0]: credential: exp: time: unknown unit "d" in duration "2d"',
    ),
    (
        "duplicate-key",
        "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\nkind: Config\n",
        'parse config: yaml: line 3, column 1: mapping key "kind" is defined more than once',
    ),
    ("not-a-mapping", "- a\n- b\n", "parse config: the document must be a mapping, got list"),
    # Hostile YAML: one line each, never a traceback (docs/config.md#yaml-limits).
    (
        "key-is-a-sequence",
        "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\n? [a, b]\n: 1\n",
        "parse config: yaml: line 3, column 3: invalid map key: a sequence cannot be a key",
    ),
    (
        "key-is-a-mapping",
        "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\n{a: 1}: 1\n",
        "parse config: yaml: line 3, column 1: invalid map key: a mapping cannot be a key",
    ),
    (
        "number-key",
        "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\n1: x\n",
        'parse config: unknown field "1"',
    ),
    (
        "key-with-newline",
        'apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\n"a\\nb": x\n',
        'parse config: unknown field "a\\nb"',
    ),
    (
        "anchor-contains-itself",
        "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\nartifacts: &a [*a]\n",
        "parse config: yaml: line 3, column 16: anchor 'a' value contains itself",
    ),
    (
        "unknown-anchor",
        "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\nartifacts: *a\n",
        "parse config: yaml: line 3, column 12: unknown anchor 'a' referenced",
    ),
    (
        "merge-not-a-mapping",
        "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\n<<: 5\n",
        "parse config: yaml: line 3, column 1: map merge requires map or sequence of maps as the value",
    ),
    (
        "explicit-tag-mismatch",
        "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\ncharts:\n  - limit: !!int many\n",
        "parse config: yaml: line 4, column 12: cannot decode !!str `many` as a !!int",
    ),
    (
        "unsupported-tag",
        "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\ncharts: !!set {a}\n",
        "parse config: yaml: line 3, column 9: cannot decode a mapping as a !!set",
    ),
    (
        "too-deep",
        "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\nx: " + "[" * 101 + "]" * 101 + "\n",
        "parse config: yaml: line 3, column 103: exceeded max depth of 100",
    ),
    (
        "limit-past-64-bits",
        artifact(selector={"limit": 99999999999999999999}),
        "parse config: artifacts[0]: selector: limit: number out of range for a 64-bit integer",
    ),
    (
        "chart-limit-past-64-bits",
        chart(limit=-(1 << 63) - 1),
        "parse config: charts[0]: limit: number out of range for a 64-bit integer",
    ),
    (
        "chunk-5000-digits",
        "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\nhosts:\n  - host: a.io\n"
        f"    maxChunkSize: {'9' * 5000}\n",
        "parse config: hosts[0]: maxChunkSize: number out of range for a 64-bit integer",
    ),
    (
        "exp-overflow",
        host(credential={"jwkPath": "k.json", "iss": "i", "sub": "s", "exp": "2562048h"}),
        'parse config: hosts[0]: credential: exp: time: invalid duration "2562048h"',
    ),
    (
        "exp-5000-digits",
        host(credential={"jwkPath": "k.json", "iss": "i", "sub": "s", "exp": "9" * 5000 + "s"}),
        f'parse config: hosts[0]: credential: exp: time: invalid duration "{"9" * 5000}s"',
    ),
    # Hosts, in the documented order.
    ("host-required", host(host=" ", credential=TOKEN), "hosts[0]: host is required"),
    (
        "host-newline",
        host(host="a.io\nb.io", credential=TOKEN),
        'hosts[0]: host "a.io\\nb.io" must not contain control characters',
    ),
    ("username-needs-credential", host(username="bot"), "hosts[0]: username requires credential"),
    (
        "credential-xor-provider",
        host(credential=TOKEN, provider="ecr"),
        "hosts[0]: credential and provider are mutually exclusive",
    ),
    (
        "provider-xor-tls",
        host(provider="ecr", tls={"serverAuth": {"value": "pem"}}),
        "hosts[0]: provider and tls are mutually exclusive",
    ),
    (
        "no-token-source",
        host(credential={"iss": "x"}),
        "hosts[0]: credential: exactly one of provider, value, fromPath, jwkPath, or jwkValue must be set",
    ),
    (
        "two-token-sources",
        host(credential={"value": "a", "fromPath": "b"}),
        "hosts[0]: credential: exactly one of provider, value, fromPath, jwkPath, or jwkValue must be set",
    ),
    (
        "blank-source-is-unset",
        host(credential={"value": "  "}),
        "hosts[0]: credential: exactly one of provider, value, fromPath, jwkPath, or jwkValue must be set",
    ),
    (
        "jwk-needs-iss",
        host(credential={"jwkValue": "{}", "sub": "s"}),
        "hosts[0]: credential: iss is required with jwkPath or jwkValue",
    ),
    (
        "jwk-needs-sub",
        host(credential={"jwkPath": "k.json", "iss": "i"}),
        "hosts[0]: credential: sub is required with jwkPath or jwkValue",
    ),
    (
        "jwk-exp-positive",
        host(credential={"jwkPath": "k.json", "iss": "i", "sub": "s", "exp": "0s"}),
        "hosts[0]: credential: exp must be a positive duration",
    ),
    (
        "credential-provider-enum",
        host(credential={"provider": "gitlab"}),
        'hosts[0]: credential: provider "gitlab" must be one of: github, forgejo, gcp, azure, aws, jwt-svid',
    ),
    (
        "provider-no-iss",
        host(credential={"provider": "github", "iss": "x"}),
        "hosts[0]: credential: iss and sub can only be set with jwkPath or jwkValue",
    ),
    (
        "provider-no-exp",
        host(credential={"provider": "gcp", "aud": "a", "exp": "1h"}),
        "hosts[0]: credential: exp can only be set with jwkPath or jwkValue",
    ),
    (
        "value-no-sub",
        host(credential={"value": "t", "sub": "x"}),
        "hosts[0]: credential: iss and sub can only be set with jwkPath or jwkValue",
    ),
    (
        "value-no-aud",
        host(credential={"fromPath": "t", "aud": "x"}),
        "hosts[0]: credential: aud can only be set with jwkPath, jwkValue, or provider",
    ),
    (
        "value-no-exp",
        host(credential={"value": "t", "exp": "1h"}),
        "hosts[0]: credential: exp can only be set with jwkPath or jwkValue",
    ),
    ("host-provider-enum", host(provider="gcr"), 'hosts[0]: provider "gcr" must be one of: ecr, acr, gar'),
    (
        "chunk-negative",
        host(credential=TOKEN, maxChunkSize=-1),
        "hosts[0]: maxChunkSize must be >= 0 (0 disables chunking)",
    ),
    (
        "chunk-bytes-past-64-bits",
        host(maxChunkSize=1 << 53),
        "hosts[0]: maxChunkSize must be <= 9007199254740991 (its size in bytes must fit in 64 bits)",
    ),
    (
        "from-path-nul",
        host(credential={"fromPath": "token\0.txt"}),
        'hosts[0] "registry.example.com": credential.fromPath: the path contains a NUL character',
    ),
    (
        "host-needs-something",
        host(),
        "hosts[0]: one of credential, provider, tls, or maxChunkSize is required",
    ),
    (
        "host-duplicate",
        {
            **HEAD,
            "artifacts": [ARTIFACT],
            "hosts": [{"host": "a.io", "maxChunkSize": 1}, {"host": "a.io", "provider": "ecr"}],
        },
        'hosts[1]: host "a.io" is configured more than once',
    ),
    # TLS.
    ("tls-empty", tls(), "hosts[0]: tls: one of serverAuth or clientAuth is required"),
    (
        "server-two-sources",
        tls(serverAuth={"fromPath": "ca.crt", "value": "pem"}),
        "hosts[0]: tls: serverAuth: exactly one of fromPath, value, or spiffe must be set",
    ),
    (
        "server-no-source",
        tls(serverAuth={}),
        "hosts[0]: tls: serverAuth: exactly one of fromPath, value, or spiffe must be set",
    ),
    (
        "spiffe-two",
        tls(serverAuth={"spiffe": {"serverID": "spiffe://a/b", "authorizeAny": True}}),
        "hosts[0]: tls: serverAuth: spiffe: exactly one of serverID, trustDomain, or authorizeAny must be set",
    ),
    (
        "spiffe-bad-id",
        tls(serverAuth={"spiffe": {"serverID": "https://example.org/x"}}),
        'hosts[0]: tls: serverAuth: spiffe: serverID "https://example.org/x" is not a valid SPIFFE ID: '
        "scheme is missing or invalid",
    ),
    (
        "spiffe-bad-path",
        tls(serverAuth={"spiffe": {"serverID": "spiffe://example.org/a//b"}}),
        'hosts[0]: tls: serverAuth: spiffe: serverID "spiffe://example.org/a//b" is not a valid SPIFFE ID: '
        "path cannot contain empty segments",
    ),
    (
        "spiffe-bad-domain",
        tls(serverAuth={"spiffe": {"trustDomain": "Example.org"}}),
        'hosts[0]: tls: serverAuth: spiffe: trustDomain "Example.org" is not valid: '
        "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores",
    ),
    (
        "client-provider-and-cert",
        tls(clientAuth={"provider": "x509-svid", "certificate": {"value": "pem"}}),
        "hosts[0]: tls: clientAuth: provider is mutually exclusive with certificate and key",
    ),
    (
        "client-provider-enum",
        tls(clientAuth={"provider": "spiffe"}),
        'hosts[0]: tls: clientAuth: provider "spiffe" must be "x509-svid"',
    ),
    (
        "client-cert-required",
        tls(clientAuth={"key": {"value": "k"}}),
        "hosts[0]: tls: clientAuth: certificate is required",
    ),
    (
        "client-cert-one-source",
        tls(clientAuth={"certificate": {}, "key": {"value": "k"}}),
        "hosts[0]: tls: clientAuth: certificate: exactly one of fromPath or value must be set",
    ),
    (
        "client-key-required",
        tls(clientAuth={"certificate": {"value": "c"}}),
        "hosts[0]: tls: clientAuth: key is required",
    ),
    (
        "client-key-one-source",
        tls(clientAuth={"certificate": {"value": "c"}, "key": {"value": "k", "fromPath": "k.pem"}}),
        "hosts[0]: tls: clientAuth: key: exactly one of fromPath or value must be set",
    ),
    # Charts.
    ("chart-name", chart(name=""), "charts[0]: name is required"),
    ("chart-source", chart(source=""), "charts[0]: source: source is required"),
    (
        "chart-source-oci",
        chart(source="oci://ghcr.io/charts"),
        'charts[0]: source: scheme "oci" must be one of: http, https '
        "(use 'artifacts' to mirror an OCI Helm chart to another OCI repository)",
    ),
    (
        "chart-source-no-scheme",
        chart(source="charts.example.com"),
        'charts[0]: source: scheme "" must be one of: http, https '
        "(use 'artifacts' to mirror an OCI Helm chart to another OCI repository)",
    ),
    (
        "chart-source-host",
        chart(source="https:///index"),
        'charts[0]: source: URL "https:///index" is missing a host',
    ),
    (
        "chart-source-invalid",
        chart(source="http://[::1"),
        'charts[0]: source: invalid URL: parse "http://[::1": Invalid IPv6 URL',
    ),
    (
        "chart-source-newline",
        chart(source="https://charts.example.com/\nx"),
        'charts[0]: source: invalid URL: parse "https://charts.example.com/\\nx": '
        "net/url: invalid control character in URL",
    ),
    (
        "chart-source-port-not-a-number",
        chart(source="https://charts.example.com:https"),
        'charts[0]: source: invalid URL: parse "https://charts.example.com:https": invalid port ":https" after host',
    ),
    (
        "chart-source-port-range",
        chart(source="https://charts.example.com:65536/x"),
        'charts[0]: source: invalid URL: parse "https://charts.example.com:65536/x": '
        'invalid port ":65536" after host (out of range 0-65535)',
    ),
    ("chart-destination", chart(destination=" "), "charts[0]: destination: destination is required"),
    (
        "chart-destination-scheme",
        chart(destination="quay.io/example/charts"),
        'charts[0]: destination: scheme must be oci://, got ""',
    ),
    (
        "chart-destination-host",
        chart(destination="oci:///charts"),
        'charts[0]: destination: URL "oci:///charts" is missing a host',
    ),
    (
        "chart-destination-port-range",
        chart(destination="oci://[::1]:" + "5" * 5000 + "/charts"),
        f'charts[0]: destination: invalid URL: parse "oci://[::1]:{"5" * 5000}/charts": '
        f'invalid port ":{"5" * 5000}" after host (out of range 0-65535)',
    ),
    (
        "chart-version-5000-digits",
        chart(version="1" * 5000),
        f'charts[0]: version "{"1" * 5000}" is not a valid semver constraint: constraint parser error',
    ),
    (
        "chart-version",
        chart(version=">= banana"),
        'charts[0]: version ">= banana" is not a valid semver constraint: improper constraint: >= banana',
    ),
    ("chart-limit", chart(limit=-1), "charts[0]: limit must be >= 0 (0 = unlimited)"),
    # Artifacts.
    (
        "artifact-source",
        artifact(source="ghcr.io/Fluxcd/cli"),
        'artifacts[0]: source "ghcr.io/Fluxcd/cli" is not a valid OCI repository: '
        "repository can only contain the characters `abcdefghijklmnopqrstuvwxyz0123456789_-./`: Fluxcd/cli",
    ),
    (
        "artifact-destination-tag",
        artifact(destination="localhost:5000/cli:v1"),
        'artifacts[0]: destination "localhost:5000/cli:v1" is not a valid OCI repository: '
        "repository can only contain the characters `abcdefghijklmnopqrstuvwxyz0123456789_-./`: cli:v1",
    ),
    (
        "artifact-scheme",
        artifact(source="oci://ghcr.io/a/b"),
        'artifacts[0]: source "oci://ghcr.io/a/b" is not a valid OCI repository: '
        "write the repository without the oci:// scheme: ghcr.io/a/b",
    ),
    (
        "artifact-source-newline",
        artifact(source="ghcr.io/a/b\nc"),
        'artifacts[0]: source "ghcr.io/a/b\\nc" is not a valid OCI repository: '
        "repository can only contain the characters `abcdefghijklmnopqrstuvwxyz0123456789_-./`: a/b\\nc",
    ),
    (
        "registry-port-not-a-number",
        artifact(source="ghcr.io:https/fluxcd/cli"),
        'artifacts[0]: source "ghcr.io:https/fluxcd/cli" is not a valid OCI repository: '
        "registries must be valid RFC 3986 URI authorities: ghcr.io:https",
    ),
    (
        "registry-port-range",
        artifact(destination="localhost:99999/cli"),
        'artifacts[0]: destination "localhost:99999/cli" is not a valid OCI repository: '
        'invalid port ":99999" in registry "localhost:99999" (out of range 0-65535)',
    ),
    (
        "regex-pattern-required",
        artifact(selector={"regex": {"extract": "$v"}}),
        'parse config: artifacts[0]: selector: regex: missing required field "pattern"',
    ),
    (
        "regex-pattern-blank",
        artifact(selector={"regex": {"pattern": " "}}),
        "artifacts[0]: selector: regex.pattern is required when regex is set",
    ),
    (
        "regex-compile",
        artifact(selector={"regex": {"pattern": "(abc"}}),
        'artifacts[0]: selector: regex.pattern "(abc" does not compile: error parsing regexp: missing closing ): `(abc`',
    ),
    (
        "regex-lookahead",
        artifact(selector={"regex": {"pattern": "^v(?=1)"}}),
        'artifacts[0]: selector: regex.pattern "^v(?=1)" does not compile: '
        "error parsing regexp: invalid or unsupported Perl syntax: `(?=`",
    ),
    (
        "semver-constraint",
        artifact(selector={"semver": "~> one"}),
        'artifacts[0]: selector: semver "~> one" is not a valid constraint: improper constraint: ~> one',
    ),
    (
        "semver-5000-digits",
        artifact(selector={"semver": ">=" + "1" * 5000}),
        f'artifacts[0]: selector: semver ">={"1" * 5000}" is not a valid constraint: constraint parser error',
    ),
    (
        "sort-by",
        artifact(selector={"sortBy": "date"}),
        'artifacts[0]: selector: sortBy "date" must be one of: semver, alphabetical, numerical',
    ),
    (
        "selector-limit",
        artifact(selector={"limit": -2}),
        "artifacts[0]: selector: limit must be >= 0 (0 = unlimited)",
    ),
    (
        "verify-provider",
        artifact(verify={"provider": "notation", "matchOIDCIdentity": [{"issuer": "i", "subject": "s"}]}),
        'artifacts[0]: verify: provider "notation" must be "cosign"',
    ),
    (
        "verify-identities",
        artifact(verify={"provider": "cosign"}),
        "artifacts[0]: verify: matchOIDCIdentity must contain at least one identity",
    ),
    (
        "verify-min-age",
        artifact(
            verify={
                "provider": "cosign",
                "minAge": "-1h",
                "matchOIDCIdentity": [{"issuer": "i", "subject": "s"}],
            }
        ),
        "artifacts[0]: verify: minAge must be >= 0",
    ),
    (
        "verify-issuer",
        artifact(
            verify={
                "provider": "cosign",
                "matchOIDCIdentity": [{"issuer": "i", "subject": "s"}, {"subject": "s"}],
            }
        ),
        "artifacts[0]: verify: matchOIDCIdentity[1].issuer is required",
    ),
    (
        "verify-subject",
        artifact(verify={"provider": "cosign", "matchOIDCIdentity": [{"issuer": "i"}]}),
        "artifacts[0]: verify: matchOIDCIdentity[0].subject is required",
    ),
    (
        "verify-subject-compile",
        artifact(verify={"provider": "cosign", "matchOIDCIdentity": [{"issuer": "i", "subject": "a[b"}]}),
        'artifacts[0]: verify: matchOIDCIdentity[0].subject "a[b" does not compile: '
        "error parsing regexp: missing closing ]: `[b`",
    ),
    # Order: hosts before charts before artifacts.
    (
        "hosts-first",
        {
            **HEAD,
            "artifacts": [{**ARTIFACT, "selector": {"limit": -1}}],
            "charts": [{**CHART, "limit": -1}],
            "hosts": [{"host": "a.io"}],
        },
        "hosts[0]: one of credential, provider, tls, or maxChunkSize is required",
    ),
    (
        "charts-before-artifacts",
        {**HEAD, "artifacts": [{**ARTIFACT, "selector": {"limit": -1}}], "charts": [{**CHART, "limit": -1}]},
        "charts[0]: limit must be >= 0 (0 = unlimited)",
    ),
]


@pytest.mark.parametrize(("document", "message"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_rejected_with_exact_message(document: dict[str, Any] | str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        check(document, tmp_path)
    assert str(caught.value) == message


VALID: list[tuple[str, dict[str, Any]]] = [
    ("minimal-artifact", artifact()),
    ("minimal-chart", chart()),
    ("selector-null", artifact(selector=None)),
    ("limit-zero", artifact(selector={"limit": 0, "sortBy": "alphabetical"})),
    ("chunk-only-host", host(maxChunkSize=1024)),
    ("provider-host", host(provider="acr")),
    ("bearer-value", host(credential=TOKEN)),
    ("username-value", host(username="bot", credential=TOKEN)),
    ("jwk", host(credential={"jwkPath": "k.json", "iss": "i", "sub": "s", "aud": "a", "exp": "8760h"})),
    ("provider-aud", host(credential={"provider": "aws", "aud": "registry"})),
    (
        "spiffe-self",
        tls(serverAuth={"spiffe": {"trustDomain": "self"}}, clientAuth={"provider": "x509-svid"}),
    ),
    ("spiffe-any", tls(serverAuth={"spiffe": {"authorizeAny": True}})),
    ("spiffe-id", tls(serverAuth={"spiffe": {"serverID": "spiffe://example.org/ns/registry"}})),
    ("static-mtls", tls(clientAuth={"certificate": {"value": "c"}, "key": {"fromPath": "k.pem"}})),
    ("chart-wildcard-version", chart(version="6.x", limit=0)),
    ("prerelease-5000-digits", artifact(selector={"semver": ">=1.0.0-" + "1" * 5000})),
    ("ports-at-the-edges", {**chart(source="https://a.io:65535"), "artifacts": [{**ARTIFACT, "source": "a.io:0/xx"}]}),
    ("chunk-largest", host(maxChunkSize=9007199254740991)),
    ("limit-largest", artifact(selector={"limit": (1 << 63) - 1})),
    ("exp-longest", host(credential={"jwkPath": "k.json", "iss": "i", "sub": "s", "exp": "2562047h"})),
    (
        "verify-min-age-zero",
        artifact(
            verify={
                "provider": "cosign",
                "minAge": "0s",
                "matchOIDCIdentity": [{"issuer": "i", "subject": "^s$"}],
            }
        ),
    ),
]


@pytest.mark.parametrize("document", [case[1] for case in VALID], ids=[case[0] for case in VALID])
def test_accepted(document: dict[str, Any], tmp_path: Path) -> None:
    check(document, tmp_path)


def test_hosts_only_config_is_fine_for_login_and_secret(tmp_path: Path) -> None:
    document = {**HEAD, "hosts": [{"host": "a.io", "credential": TOKEN}]}
    check(document, tmp_path, require_entries=False)


def test_defaults_apply(tmp_path: Path) -> None:
    text = yaml.safe_dump({**HEAD, "artifacts": [ARTIFACT], "charts": [CHART]})
    config = parse_config(text, root=tmp_path, require_entries=True, env={})
    assert config.artifacts[0].selector is None
    assert (config.artifacts[0].includeReferrers, config.artifacts[0].overwrite) == (False, False)
    assert (config.charts[0].version, config.charts[0].limit, config.charts[0].overwrite) == ("*", 1, False)
