"""Chart `.tgz` → Helm OCI config blob: exact bytes, Helm's decoding quirks, and every refusal Helm makes."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from fluxmirror.errors import FluxMirrorError
from fluxmirror.helm import archive
from fluxmirror.helm.chart import ChartError, ChartMetadata, load_chart, sanitize


def _tgz(files: dict[str, bytes | None], *, symlinks: dict[str, str] | None = None) -> bytes:
    """A gzip'd tar in memory; a None body makes a directory entry."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            if body is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buffer.getvalue()


def _chart(chart_yaml: str, **more: str) -> bytes:
    files: dict[str, bytes | None] = {"demo/": None, "demo/Chart.yaml": chart_yaml.encode()}
    files |= {f"demo/{name.replace('_', '.')}": body.encode() for name, body in more.items()}
    files["demo/values.yaml"] = b"replicaCount: 1\n"
    return _tgz(files)


def _error(data: bytes) -> str:
    with pytest.raises(ChartError) as info:
        load_chart(data)
    return str(info.value)


# `helm create mychart` writes this Chart.yaml (comments shortened here; they do not matter).
HELM_CREATE_CHART_YAML = """\
apiVersion: v2
name: mychart
description: A Helm chart for Kubernetes

# application or library
type: application

# the chart's own version
version: 0.1.0

# the packaged application's version, quoted as the scaffold recommends
appVersion: "1.16.0"
"""

FULL_CHART_YAML = """\
type: application
dependencies:
  - alias: db
    import-values: [data, {parent: myimports, child: default.data}]
    enabled: true
    tags: [backend, storage]
    condition: postgresql.enabled
    repository: https://charts.example.com
    version: ~12.1.0
    name: postgresql
    depends-on: [cache]
  - name: redis
    enabled: false
kubeVersion: ">=1.23.0-0"
annotations:
  category: Database
  artifacthub.io/license: Apache-2.0
deprecated: true
appVersion: "16.2"
tags: frontend,backend
condition: demo.enabled
apiVersion: v2
icon: https://example.com/icon.png
maintainers:
  - url: https://example.com/alice
    email: alice@example.com
    name: Alice
  - name: Bob
keywords: [database, sql]
description: A demo chart
version: 1.2.3-rc.1+build.5
sources: [https://github.com/example/demo]
home: https://example.com
name: demo
"""

FULL_CONFIG = (
    b'{"name":"demo","home":"https://example.com","sources":["https://github.com/example/demo"],'
    b'"version":"1.2.3-rc.1+build.5","description":"A demo chart","keywords":["database","sql"],'
    b'"maintainers":[{"name":"Alice","email":"alice@example.com","url":"https://example.com/alice"},{"name":"Bob"}],'
    b'"icon":"https://example.com/icon.png","apiVersion":"v2","condition":"demo.enabled","tags":"frontend,backend",'
    b'"appVersion":"16.2","deprecated":true,"annotations":{"artifacthub.io/license":"Apache-2.0","category":"Database"},'
    b'"kubeVersion":"\\u003e=1.23.0-0","dependencies":[{"name":"postgresql","version":"~12.1.0",'
    b'"repository":"https://charts.example.com","condition":"postgresql.enabled","tags":["backend","storage"],'
    b'"enabled":true,"import-values":["data",{"child":"default.data","parent":"myimports"}],"alias":"db",'
    b'"depends-on":["cache"]},{"name":"redis","repository":""}],"type":"application"}'
)


@pytest.mark.parametrize(
    ("data", "config"),
    [
        pytest.param(
            _chart("apiVersion: v2\nname: demo\nversion: 1.2.3\n"),
            b'{"name":"demo","version":"1.2.3","apiVersion":"v2"}',
            id="minimal-v2",
        ),
        # Independent reference: ChartMuseum's /api/charts embeds Helm's chart.Metadata and encodes it with
        # encoding/json, i.e. the same bytes `helm push` uses as the config blob. Public walkthroughs that
        # upload a fresh `helm create mychart` package show exactly this object (before ChartMuseum's own
        # urls/created/digest keys). Written down from there, not produced by this code.
        pytest.param(
            _chart(HELM_CREATE_CHART_YAML.replace("demo", "mychart")),
            b'{"name":"mychart","version":"0.1.0","description":"A Helm chart for Kubernetes",'
            b'"apiVersion":"v2","appVersion":"1.16.0","type":"application"}',
            id="helm-create-scaffold",
        ),
        pytest.param(_chart(FULL_CHART_YAML), FULL_CONFIG, id="every-field-in-struct-order"),
        pytest.param(
            _chart("name: legacy\nversion: 0.1.0\n"),
            b'{"name":"legacy","version":"0.1.0","apiVersion":"v1"}',
            id="missing-apiversion-is-v1",
        ),
        pytest.param(
            _chart("apiVersion: ''\nname: legacy\nversion: 0.1.0\n"),
            b'{"name":"legacy","version":"0.1.0","apiVersion":"v1"}',
            id="empty-apiversion-is-v1",
        ),
        pytest.param(
            _chart(
                "APIVERSION: v2\nName: demo\nVERSION: 1.0.0\nappversion: '2'\nKubeVersion: '>=1.20'\n"
                "Dependencies: [{NAME: a, Repository: r, Import-Values: [x]}]\nMaintainers: [{EMAIL: e}]\n"
            ),
            b'{"name":"demo","version":"1.0.0","maintainers":[{"email":"e"}],"apiVersion":"v2","appVersion":"2",'
            b'"kubeVersion":"\\u003e=1.20","dependencies":[{"name":"a","repository":"r","import-values":["x"]}]}',
            id="keys-case-insensitive",
        ),
        pytest.param(
            _chart("apiVersion: v2\nName: upper\nname: lower\nversion: 1.0.0\n"),
            b'{"name":"lower","version":"1.0.0","apiVersion":"v2"}',
            id="case-duplicates-last-in-sorted-order-wins",
        ),
        pytest.param(
            _chart(
                "apiVersion: v2\nname: demo\nversion: 1.0.0\nengine: gotpl\nurls: [x]\nextra: {a: [1, {b: 2}]}\n"
                "maintainers: [{name: m, twitter: '@m'}]\ndependencies: [{name: d, repository: r, foo: bar}]\n"
            ),
            b'{"name":"demo","version":"1.0.0","maintainers":[{"name":"m"}],"apiVersion":"v2",'
            b'"dependencies":[{"name":"d","repository":"r"}]}',
            id="unknown-keys-dropped",
        ),
        pytest.param(
            _chart(
                "apiVersion: v2\nname: demo\nversion: 1.0.0\nhome: ''\nicon: ~\nsources: []\nkeywords: []\n"
                "annotations: {}\ndeprecated: false\nmaintainers: []\ndependencies: []\ntype: ''\ntags:\n"
            ),
            b'{"name":"demo","version":"1.0.0","apiVersion":"v2"}',
            id="empty-values-omitted",
        ),
        pytest.param(
            _chart("apiVersion: v2\nname: demo\nversion: 1.0.0\nmaintainers: [{}]\ndependencies: [{}]\n"),
            b'{"name":"demo","version":"1.0.0","maintainers":[{}],"apiVersion":"v2",'
            b'"dependencies":[{"name":"","repository":""}]}',
            id="dependency-name-and-repository-always-present",
        ),
        pytest.param(
            _chart(
                "apiVersion: v2\nname: demo\nversion: 1.0.0\ndependencies:\n"
                "- {name: a, repository: r, import-values: [{child: c, parent: p}, s, 1, 2.5, true, null, [x]]}\n"
            ),
            b'{"name":"demo","version":"1.0.0","apiVersion":"v2","dependencies":[{"name":"a","repository":"r",'
            b'"import-values":[{"child":"c","parent":"p"},"s",1,2.5,true,null,["x"]]}]}',
            id="import-values-kept-generic",
        ),
        pytest.param(
            _chart(
                "apiVersion: v2\nname: demo\nversion: 1.0.0\nannotations:\n  b: '2'\n  B: '1'\n  a: x\n"
                "  \u00e9: e\n  _: u\n  multi: |\n    line one\n    line two\n  empty: ~\n  num: 1.50\n  yes: no\n"
            ),
            '{"name":"demo","version":"1.0.0","apiVersion":"v2","annotations":{"B":"1","_":"u","a":"x","b":"2",'
            '"empty":"","multi":"line one\\nline two\\n","num":"1.5","true":"false","\u00e9":"e"}}'.encode(),
            id="annotations-sorted-bytewise-and-stringified",
        ),
        pytest.param(
            _chart(
                'apiVersion: v2\nname: demo\nversion: 1.0.0\ndescription: "<b>Tom & Jerry</b>"\n'
                'annotations: {sep: "a\\u2028b\\u2029c"}\n'
            ),
            b'{"name":"demo","version":"1.0.0","description":"\\u003cb\\u003eTom \\u0026 Jerry\\u003c/b\\u003e",'
            b'"apiVersion":"v2","annotations":{"sep":"a\\u2028b\\u2029c"}}',
            id="go-html-escaping",
        ),
        pytest.param(
            _chart("apiVersion: v2\nname: demo\nversion: 1.0.0\ndescription: Grüße – 日本語 😀\n"),
            '{"name":"demo","version":"1.0.0","description":"Grüße – 日本語 😀","apiVersion":"v2"}'.encode(),
            id="non-ascii-raw-utf8",
        ),
        pytest.param(
            _chart(
                "apiVersion: v2\nname: demo\nversion: 1.0.0\n"
                'description: "tab\\there\\nnew line\\u00a0nbsp\\u2003em\\x01ctl\\u200bzwsp\\x7fdel\\u00adshy"\n'
                'home: "https://example.com/\\u0085nel"\nkeywords: ["a\\tb", "c\\u3000d"]\nsources: ["s\\x1b"]\n'
                'maintainers: [{name: "Al\\u00a0ice", email: "a\\u2028b", url: "u\\x00"}]\n'
                'dependencies: [{name: "dep\\t", repository: "r\\x02", condition: "c\\r", tags: ["t\\nx"]}]\n'
                'annotations: {kept: "a\\tb"}\n'
            ),
            b'{"name":"demo","home":"https://example.com/ nel","sources":["s"],"version":"1.0.0",'
            b'"description":"tab here new line nbsp emctlzwspdelshy","keywords":["a b","c d"],'
            b'"maintainers":[{"name":"Al ice","email":"a b","url":"u"}],"apiVersion":"v2",'
            b'"annotations":{"kept":"a\\tb"},"dependencies":[{"name":"dep ","repository":"r","condition":"c ",'
            b'"tags":["t x"]}]}',
            id="sanitised-fields-only",
        ),
        pytest.param(
            _chart(
                "apiVersion: v1\nname: legacy\nversion: 0.3.0\n",
                requirements_yaml="dependencies:\n- name: mariadb\n  version: 7.x.x\n"
                "  repository: https://charts.bitnami.com/bitnami\n  condition: mariadb.enabled\n  tags:\n    - database\n",
            ),
            b'{"name":"legacy","version":"0.3.0","apiVersion":"v1","dependencies":[{"name":"mariadb","version":"7.x.x",'
            b'"repository":"https://charts.bitnami.com/bitnami","condition":"mariadb.enabled","tags":["database"]}]}',
            id="v1-requirements-yaml",
        ),
        pytest.param(
            _chart("apiVersion: v2\nname: demo\nversion: 1.0.0\n", requirements_yaml="dependencies: [{name: a}]\n"),
            b'{"name":"demo","version":"1.0.0","apiVersion":"v2","dependencies":[{"name":"a","repository":""}]}',
            id="v2-requirements-yaml-still-merged-as-helm-does",
        ),
        pytest.param(
            _chart(
                "apiVersion: v1\nname: legacy\nversion: 0.3.0\ndependencies: [{name: a, version: '1'}, {name: b}]\n",
                requirements_yaml="dependencies: [{repository: r}]\n",
            ),
            b'{"name":"legacy","version":"0.3.0","apiVersion":"v1",'
            b'"dependencies":[{"name":"a","version":"1","repository":"r"}]}',
            id="requirements-merge-into-existing-elements-like-go",
        ),
        pytest.param(
            _chart("apiVersion: v2\nname: demo\nversion: 1.0.0\n") + b"trailing bytes after the gzip member",
            b'{"name":"demo","version":"1.0.0","apiVersion":"v2"}',
            id="bytes-after-the-archive-end-unread-as-in-go",
        ),
        pytest.param(
            _chart("\ufeffapiVersion: v2\nname: demo\nversion: 1.0.0\n"),
            b'{"name":"demo","version":"1.0.0","apiVersion":"v2"}',
            id="utf8-bom-stripped",
        ),
        pytest.param(
            _chart("apiVersion: v2\nname: demo\nversion: 1.0.0\n---\nname: second\n: broken [\n"),
            b'{"name":"demo","version":"1.0.0","apiVersion":"v2"}',
            id="only-first-document",
        ),
        pytest.param(
            _chart(
                "apiVersion: v2\nname: demo\nversion: 1.0.0\n"
                "maintainers: [&m {name: team, email: team@example.com}, *m]\nkeywords: [&k kw, *k]\n"
            ),
            b'{"name":"demo","version":"1.0.0","keywords":["kw","kw"],"maintainers":[{"name":"team",'
            b'"email":"team@example.com"},{"name":"team","email":"team@example.com"}],"apiVersion":"v2"}',
            id="anchors-and-aliases",
        ),
        pytest.param(
            _tgz({"whatever-dir/Chart.yaml": b"apiVersion: v2\nname: demo\nversion: 1.0.0\n"}),
            b'{"name":"demo","version":"1.0.0","apiVersion":"v2"}',
            id="top-directory-name-irrelevant",
        ),
        pytest.param(
            _tgz({"demo\\Chart.yaml": b"apiVersion: v2\nname: demo\nversion: 1.0.0\n"}),
            b'{"name":"demo","version":"1.0.0","apiVersion":"v2"}',
            id="windows-separators",
        ),
        pytest.param(
            _tgz(
                {
                    "demo/Chart.yaml": b"apiVersion: v2\nname: demo\nversion: 1.0.0\n",
                    "demo/charts/sub/Chart.yaml": b"not: [valid",
                    "demo/templates/Chart.yaml": b"name: ignored",
                    "demo/./sub/../values.yaml": b"x: 1",
                }
            ),
            b'{"name":"demo","version":"1.0.0","apiVersion":"v2"}',
            id="only-the-root-chart-yaml-counts",
        ),
    ],
)
def test_config_blob(data: bytes, config: bytes) -> None:
    assert load_chart(data).config == config


# go-yaml v2 decides what a plain scalar is, and sigs.k8s.io/yaml prints a number landing in a string
# field with FormatFloat(f, 'g', -1, 32) or as a decimal integer.
@pytest.mark.parametrize(
    ("scalar", "published"),
    [
        pytest.param("1.10", "1.1", id="float-loses-trailing-zero"),
        pytest.param("1.0", "1", id="float-whole"),
        pytest.param("2.50", "2.5", id="float-two-digits"),
        pytest.param("1.23456789", "1.2345679", id="float32-precision"),
        pytest.param("1e3", "1000", id="exponent-without-dot"),
        pytest.param("1e7", "1e+07", id="large-float-exponent-form"),
        pytest.param("0.00001", "1e-05", id="small-float-exponent-form"),
        pytest.param(".5", "0.5", id="leading-dot"),
        pytest.param("-.5", "-0.5", id="signed-leading-dot"),
        pytest.param(".inf", "+Inf", id="infinity"),
        pytest.param("-.Inf", "-Inf", id="negative-infinity"),
        pytest.param(".nan", "NaN", id="nan"),
        pytest.param("42", "42", id="int"),
        pytest.param("+7", "7", id="signed-int"),
        pytest.param("010", "8", id="octal-leading-zero"),
        pytest.param("0o17", "15", id="octal-0o"),
        pytest.param("0x1F", "31", id="hex"),
        pytest.param("0b101", "5", id="binary"),
        pytest.param("1_000", "1000", id="underscores"),
        pytest.param("09", "9", id="not-octal-so-float"),
        pytest.param("18446744073709551615", "18446744073709551615", id="uint64"),
        pytest.param("99999999999999999999", "1e+20", id="beyond-uint64-is-float"),
        pytest.param("1e400", "1e400", id="float-overflow-stays-text"),
        pytest.param("yes", "true", id="yes"),
        pytest.param("Off", "false", id="off"),
        pytest.param("y", "true", id="go-yaml-y"),
        pytest.param("N", "false", id="go-yaml-n"),
        pytest.param("1:30", "1:30", id="no-sexagesimal"),
        pytest.param("2024-01-02", "2024-01-02", id="date-stays-text"),
        pytest.param("1.2.3", "1.2.3", id="version-text"),
        pytest.param("'1.10'", "1.10", id="quoted-kept"),
        pytest.param("!!str 1.10", "1.10", id="explicit-str"),
        pytest.param("!!float 3", "3", id="explicit-float-on-int"),
        pytest.param("!custom 1.10", "1.10", id="local-tag-ignored"),
    ],
)
def test_scalars_in_string_fields(scalar: str, published: str) -> None:
    chart = load_chart(_chart(f"apiVersion: v2\nname: demo\nversion: 1.0.0\nappVersion: {scalar}\n"))
    assert chart.app_version == published


def test_numeric_version_is_stringified_then_validated() -> None:
    chart = load_chart(_chart("apiVersion: v2\nname: demo\nversion: 1.10\n"))
    assert (chart.name, chart.version) == ("demo", "1.1")
    assert chart.config == b'{"name":"demo","version":"1.1","apiVersion":"v2"}'


def test_metadata_fields() -> None:
    chart = load_chart(_chart(FULL_CHART_YAML))
    assert chart == ChartMetadata(
        name="demo", version="1.2.3-rc.1+build.5", app_version="16.2", api_version="v2", config=FULL_CONFIG
    )


_DECODE = "cannot load Chart.yaml: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(b"", "EOF", id="empty-download"),
        pytest.param(b"\x1f\x8b", "unexpected EOF", id="short-gzip-header"),
        pytest.param(b"<html>not found</html>", "gzip: invalid header", id="not-gzip"),
        pytest.param(b"PK\x03\x04" + b"\0" * 40, "gzip: invalid header", id="zip-file"),
        pytest.param(gzip.compress(b"hello world " * 100), "archive/tar: invalid tar header", id="gzip-but-not-tar"),
        pytest.param(_chart("name: x\nversion: 1\n")[:60], "unexpected EOF", id="truncated"),
        pytest.param(
            bytes(b ^ 0x55 if 30 <= i < 60 else b for i, b in enumerate(_chart("name: x\nversion: 1\n"))),
            "flate: corrupt input",
            id="corrupt-deflate",
        ),
        pytest.param(gzip.compress(b""), "no files in chart archive", id="empty-stream"),
        pytest.param(gzip.compress(b"\0" * 1024), "no files in chart archive", id="empty-tar"),
        pytest.param(_tgz({"demo/": None, "demo/templates/": None}), "no files in chart archive", id="only-dirs"),
        pytest.param(_tgz({"demo/values.yaml": b"a: 1"}), "Chart.yaml file is missing", id="no-chart-yaml"),
        pytest.param(
            _tgz({"demo/charts/sub/Chart.yaml": b"name: sub\nversion: 1\n"}),
            "Chart.yaml file is missing",
            id="only-subchart-chart-yaml",
        ),
        pytest.param(_tgz({"demo//etc/passwd": b""}), "chart illegally contains absolute paths", id="absolute-path"),
        pytest.param(
            _tgz({"demo/Chart.yaml": b"", "demo/../../evil": b""}),
            "chart illegally references parent directory",
            id="parent-directory",
        ),
        pytest.param(
            _tgz({"README.md": b"hi"}),
            'chart illegally contains content outside the base directory: "README.md"',
            id="file-outside-chart-directory",
        ),
        pytest.param(_tgz({"demo/c:/x": b""}), "chart contains illegally named files", id="drive-letter"),
        pytest.param(_tgz({"Chart.yaml/x": b""}), "chart yaml not in base directory", id="chart-yaml-as-directory"),
        pytest.param(
            _tgz({"Chart.yaml": b"name: x"}),
            'chart illegally contains content outside the base directory: "Chart.yaml"',
            id="chart-yaml-at-top",
        ),
        pytest.param(
            _tgz({"demo/Chart.yaml": b"x" * (5 * 1024 * 1024 + 1)}),
            'decompressed chart file "demo/Chart.yaml" is larger than the maximum file size 5242880',
            id="chart-yaml-over-5mib",
        ),
        pytest.param(
            _chart("name: [demo]\nversion: [1]\n"),
            f"{_DECODE} array into Go struct field Metadata.name of type string",
            id="first-type-error-in-sorted-key-order",
        ),
        pytest.param(_chart("- a\n- b\n"), f"{_DECODE} array into Go value of type v2.Metadata", id="top-level-list"),
        pytest.param(_chart("just text\n"), f"{_DECODE} string into Go value of type v2.Metadata", id="top-level-text"),
        pytest.param(
            _chart("name: demo\nversion: 1.0.0\ntags: [a, b]\n"),
            f"{_DECODE} array into Go struct field Metadata.tags of type string",
            id="chart-tags-is-a-string",
        ),
        pytest.param(
            _chart("name: demo\nversion: 1.0.0\nsources: https://example.com\n"),
            f"{_DECODE} string into Go struct field Metadata.sources of type []string",
            id="sources-not-a-list",
        ),
        pytest.param(
            _chart("name: demo\nversion: 1.0.0\nmaintainers: {name: x}\n"),
            f"{_DECODE} object into Go struct field Metadata.maintainers of type []*v2.Maintainer",
            id="maintainers-not-a-list",
        ),
        pytest.param(
            _chart("name: demo\nversion: 1.0.0\nmaintainers: [alice]\n"),
            f"{_DECODE} string into Go struct field Metadata.maintainers of type v2.Maintainer",
            id="maintainer-not-a-map",
        ),
        pytest.param(
            _chart("name: demo\nversion: 1.0.0\nmaintainers: [{name: {first: a}}]\n"),
            f"{_DECODE} object into Go struct field Maintainer.maintainers.name of type string",
            id="maintainer-field-path",
        ),
        pytest.param(
            _chart("name: demo\nversion: 1.0.0\ndeprecated: maybe\n"),
            f"{_DECODE} string into Go struct field Metadata.deprecated of type bool",
            id="deprecated-text",
        ),
        pytest.param(
            _chart("name: demo\nversion: 1.0.0\ndeprecated: 1\n"),
            f"{_DECODE} number into Go struct field Metadata.deprecated of type bool",
            id="deprecated-number",
        ),
        pytest.param(
            _chart("name: demo\nversion: 1.0.0\nannotations: {a: [x]}\n"),
            f"{_DECODE} array into Go struct field Metadata.annotations of type string",
            id="annotation-not-text",
        ),
        pytest.param(
            _chart("name: demo\nversion: 1.0.0\ndependencies: [{name: a, enabled: 'true'}]\n"),
            f"{_DECODE} string into Go struct field Dependency.dependencies.enabled of type bool",
            id="dependency-enabled-text",
        ),
        pytest.param(
            _chart("name: demo\nversion: 1.0.0\ndependencies: [{name: a, import-values: x}]\n"),
            f"{_DECODE} string into Go struct field Dependency.dependencies.import-values of type []interface {{}}",
            id="import-values-not-a-list",
        ),
        pytest.param(
            _chart("name: demo\nversion: 1.0.0\ndependencies: [{name: a, import-values: [.nan]}]\n"),
            "cannot load Chart.yaml: error converting YAML to JSON: json: unsupported value: NaN",
            id="nan-outside-string-field",
        ),
        pytest.param(
            _chart("name: demo\nversion: 1.0.0\n", requirements_yaml="dependencies: oops\n"),
            "cannot load requirements.yaml: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal "
            "string into Go struct field Metadata.dependencies of type []*v2.Dependency",
            id="requirements-yaml-type-error",
        ),
        pytest.param(_chart(""), "validation: chart.metadata.name is required", id="empty-chart-yaml"),
        pytest.param(_chart("version: 1.0.0\n"), "validation: chart.metadata.name is required", id="no-name"),
        pytest.param(
            _chart('name: "org/\\tdemo\\x01"\nversion: 1.0.0\n'),
            'validation: chart.metadata.name "org/ demo" is invalid',
            id="name-sanitised-before-checks",
        ),
        pytest.param(
            _chart("name: .\nversion: 1.0.0\n"), 'validation: chart.metadata.name "." is not allowed', id="name-dot"
        ),
        pytest.param(
            _chart("name: ..\nversion: 1.0.0\n"),
            'validation: chart.metadata.name ".." is not allowed',
            id="name-dotdot",
        ),
        pytest.param(
            _chart("name: org/demo\nversion: 1.0.0\n"),
            'validation: chart.metadata.name "org/demo" is invalid',
            id="name-with-slash",
        ),
        pytest.param(
            _chart("name: demo/\nversion: 1.0.0\n"),
            'validation: chart.metadata.name "demo/" is invalid',
            id="name-slash",
        ),
        pytest.param(_chart("name: demo\n"), "validation: chart.metadata.version is required", id="no-version"),
        pytest.param(
            _chart("name: demo\nversion: latest\n"),
            'validation: chart.metadata.version "latest" is invalid',
            id="version-not-semver",
        ),
        pytest.param(
            _chart('name: demo\nversion: "1.0.0\\n"\n'),
            'validation: chart.metadata.version "1.0.0\\n" is invalid',
            id="version-not-sanitised-and-go-quoted",
        ),
        pytest.param(
            _chart("name: demo\nversion: 1.2.3-01\n"),
            'validation: chart.metadata.version "1.2.3-01" is invalid',
            id="version-prerelease-leading-zero",
        ),
        pytest.param(
            _chart("name: demo\nversion: 1.0.0\ntype: plugin\n"),
            "validation: chart.metadata.type must be application or library",
            id="bad-type",
        ),
        pytest.param(
            _chart("name: demo\nversion: 1.0.0\nmaintainers: [{name: a}, ~]\n"),
            "validation: maintainers must not contain empty or null nodes",
            id="null-maintainer",
        ),
        pytest.param(
            _chart("name: demo\nversion: 1.0.0\ndependencies:\n- name: a\n-\n"),
            "validation: dependencies must not contain empty or null nodes",
            id="null-dependency",
        ),
        pytest.param(
            _chart("name: demo\nversion: 1.0.0\ndependencies: [{name: pg, alias: 'my.db'}]\n"),
            'validation: dependency "pg" has disallowed characters in the alias',
            id="bad-alias",
        ),
        pytest.param(
            _chart("name: demo\nversion: 1.0.0\ndependencies: [{name: a}, {name: a}]\n"),
            'validation: more than one dependency with name or alias "a"',
            id="duplicate-dependency-name",
        ),
        pytest.param(
            _chart("name: demo\nversion: 1.0.0\ndependencies: [{name: a, alias: b}, {name: b}]\n"),
            'validation: more than one dependency with name or alias "b"',
            id="alias-shadows-name",
        ),
        pytest.param(
            _chart("name: demo\nversion: 1.0.0\n", requirements_yaml="apiVersion: ''\n"),
            "validation: chart.metadata.apiVersion is required",
            id="requirements-blanks-apiversion",
        ),
        pytest.param(
            _tgz({"demo/requirements.yaml": b"dependencies: []\n"}),
            "validation: chart.metadata.apiVersion is required",
            id="requirements-without-chart-yaml",
        ),
        pytest.param(
            _tgz({"demo/values.yaml": b"x: 1"}, symlinks={"demo/Chart.yaml": "/etc/passwd"}),
            "validation: chart.metadata.name is required",
            id="symlink-read-as-empty-file",
        ),
    ],
)
def test_load_errors(data: bytes, reason: str) -> None:
    assert _error(data) == f"load chart archive: {reason}"


def _tar_of_chart() -> bytes:
    """An uncompressed chart tar: Chart.yaml's header and data (2 blocks), values.yaml's header at 1024."""
    return gzip.decompress(_tgz({"demo/Chart.yaml": b"name: demo\nversion: 1.0.0\n", "demo/values.yaml": b"a: 1"}))


@pytest.mark.parametrize(
    ("tar", "reason"),
    [
        pytest.param(
            (lambda t: t[: 1024 + 148] + b"9" + t[1024 + 149 :])(_tar_of_chart()),
            "archive/tar: invalid tar header",
            id="bad-checksum-in-second-header",
        ),
        pytest.param(
            _tar_of_chart()[:1024] + bytes(512) + b"junk" * 128,
            "archive/tar: invalid tar header",
            id="zero-block-then-data",
        ),
        pytest.param(_tar_of_chart()[: 1024 + 300], "unexpected EOF", id="stream-ends-inside-a-header"),
        pytest.param(_tar_of_chart()[:1024] + bytes(512) + bytes(100), "unexpected EOF", id="short-second-end-block"),
    ],
)
def test_an_unreadable_header_after_the_first_fails_as_in_go(tar: bytes, reason: str) -> None:
    assert _error(gzip.compress(tar)) == f"load chart archive: {reason}"


@pytest.mark.parametrize(
    "ending", [pytest.param(b"", id="no-end-blocks"), pytest.param(bytes(512), id="one-end-block")]
)
def test_archives_may_end_without_both_end_blocks(ending: bytes) -> None:
    tar = _tar_of_chart()
    chart = load_chart(gzip.compress(tar[: tar.index(b"demo/values.yaml")] + ending))
    assert (chart.name, chart.version) == ("demo", "1.0.0")


def test_yaml_syntax_error_names_the_line() -> None:
    message = _error(_chart("apiVersion: v2\nname: [demo\nversion: 1.0.0\n"))
    assert message.startswith("load chart archive: cannot load Chart.yaml: error converting YAML to JSON: yaml: line ")


def test_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    message = _error(_chart("name: demo\nversion: 1.0.0\n" + "\n".join(lines) + "\n"))
    assert message.endswith("yaml: document contains excessive aliasing")


def test_decompressed_total_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "MAX_CHART_BYTES", 100)
    data = _tgz({"demo/Chart.yaml": b"name: demo\nversion: 1.0.0\n", "demo/values.yaml": b"x" * 80})
    assert _error(data) == "load chart archive: decompressed chart is larger than the maximum size 100"


def test_decompressed_stream_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "_MAX_STREAM_BYTES", 4096)
    data = _tgz({"demo/Chart.yaml": b"name: demo\nversion: 1.0.0\n", "demo/big": b"x" * 8192})
    assert _error(data).startswith("load chart archive: decompressed chart is larger than the maximum size")


def test_chart_error_is_a_fluxmirror_error() -> None:
    with pytest.raises(FluxMirrorError) as info:
        load_chart(b"nope")
    assert isinstance(info.value, ChartError)
    assert info.value.reason == "unexpected EOF"
    assert info.value.exit_code == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("plain text", "plain text", id="unchanged"),
        pytest.param("a\tb\nc\rd\ve\ff", "a b c d e f", id="ascii-whitespace"),
        pytest.param("a\u0085b\u00a0c", "a b c", id="latin1-spaces"),
        pytest.param("a\u2000b\u2028c\u2029d\u3000e\u1680f", "a b c d e f", id="unicode-spaces"),
        pytest.param("a\x00b\x1bc\x7fd", "abcd", id="controls-dropped"),
        pytest.param("a\u200bb\ufeffc\u00add", "abcd", id="format-characters-dropped"),
        pytest.param("a\ue000b", "ab", id="private-use-dropped"),
        pytest.param("é 日本 😀 ∑", "é 日本 😀 ∑", id="printable-unicode-kept"),
    ],
)
def test_sanitize(text: str, expected: str) -> None:
    assert sanitize(text) == expected
