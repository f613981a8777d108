"""Trust nothing from the network: names, links, tag lists, error bodies and TLS failures a hostile
registry (tests/harness/hostile.py) serves, against the real CLI and a real destination registry.

Each test names the issue item it covers. Sizes, time and pacing have their own modules
(test_hostile_pacing.py, test_hostile_bounds.py).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from harness import images
from harness.faultproxy import FaultProxy
from harness.fixtures_hostile import HostileFactory
from harness.hostile import ANSI_TAGS, BACKTRACK_TAG, BIDI, DOTDOT_TAG, ESC, HOSTILE_USER, QUERY_TAG, HostileRegistry
from harness.registry import Registry, RegistryFactory
from harness.runner import Run, entry, sync

pytestmark = [pytest.mark.registry, pytest.mark.timeout(120)]

EVERY_TAG = {"sortBy": "alphabetical", "limit": 0}
"""A selector that keeps every tag, so hostile names are not dropped for not being versions."""


@pytest.fixture(scope="module")
def target(registry_factory: RegistryFactory) -> Registry:
    """The well-behaved destination, a real docker-registry."""
    return registry_factory()


def hostile_auth_env(tmp_path: Path, registry: HostileRegistry) -> dict[str, str]:
    """A Docker config holding the hostile registry's credential, as a user who trusts it would have."""
    directory = tmp_path / "docker"
    directory.mkdir(exist_ok=True)
    token = base64.b64encode(f"{HOSTILE_USER.username}:{HOSTILE_USER.password}".encode()).decode()
    (directory / "config.json").write_text(json.dumps({"auths": {registry.host: {"auth": token}}}))
    return {"DOCKER_CONFIG": str(directory)}


def secrets_of(registry: HostileRegistry) -> list[str]:
    """Every form in which the hostile registry's credential could leak."""
    return [HOSTILE_USER.password, HOSTILE_USER.basic_header().split(" ", 1)[1], *registry.issued_tokens]


def assert_no_traceback(run: Run) -> None:
    """No crash: the message is the exception a traceback ends with."""
    assert "Traceback" not in run.stderr, "crashed: " + " | ".join(run.stderr.strip().splitlines()[-2:])


def destination_paths(recorder: FaultProxy) -> set[str]:
    return {request.path for request in recorder.requests}


# -- 2. Names from the source reach URLs unchecked -------------------------------------------------


def test_dot_segment_tag_is_skipped_and_never_writes_outside_the_destination(
    tmp_path: Path, hostile: HostileRegistry, registry_factory: RegistryFactory, unique_repo: str
) -> None:
    """Item 2: the tag ``../../../prod/app/manifests/latest`` under a two-segment destination
    repository is, after dot-segment removal, the URL of ``prod/app:latest``. Production already
    holds the same blobs (under ``stable``), so a PUT there would be accepted."""
    destination = registry_factory()
    production = images.make_artifact(seed=0x4057, layer_sizes=(512,), annotations={"env": "production"})
    assert production.blobs == hostile.artifact.blobs
    images.push(destination, "prod/app", "stable", production)
    assert unique_repo.count("/") == 1  # two segments: `../../..` climbs out of `<repo>/manifests` to /v2/
    with FaultProxy(destination, blob_host=False) as recorder:
        source = hostile.ref("dotdot/app")
        run = sync(
            tmp_path, [{"source": source, "destination": f"{recorder.host}/{unique_repo}", "selector": EVERY_TAG}]
        )
        outside = {path for path in destination_paths(recorder) if not path.startswith(f"/v2/{unique_repo}/")}
    assert_no_traceback(run)
    assert images.list_tags(destination, "prod/app") == ["stable"], f"{DOTDOT_TAG!r} wrote to prod/app"
    assert outside <= {"/v2/"}, f"requests outside the destination repository: {sorted(outside)}"
    assert (run.code, run.rows()) == (0, [{"tag": "1.0.0", "status": "copied", "digest": hostile.artifact.digest}])
    assert not any(r.path.startswith("/v2/prod/") for r in hostile.requests), "the source was asked for prod/app"


def test_query_in_a_tag_is_skipped_not_cut_to_a_shorter_tag(
    tmp_path: Path, hostile: HostileRegistry, target: Registry, unique_repo: str
) -> None:
    """Item 2: ``a?b=c`` is not a tag; sent unencoded it became the tag ``a`` on both registries."""
    run = sync(
        tmp_path,
        [{"source": hostile.ref("query/app"), "destination": f"{target.host}/{unique_repo}", "selector": EVERY_TAG}],
    )
    assert_no_traceback(run)
    asked = [(r.method, r.path, r.query) for r in hostile.requests if "/manifests/" in r.path]
    assert asked == [], f"{QUERY_TAG!r} was sent as a URL: {asked}"
    assert unique_repo not in images.catalog(target), f"{QUERY_TAG!r} wrote to the destination"
    assert (run.code, run.rows()) == (0, [])


def test_string_tags_fail_the_entry_instead_of_mirroring_its_letters(
    tmp_path: Path, hostile: HostileRegistry, target: Registry, unique_repo: str
) -> None:
    """Items 2 and 4: ``"tags": "v1"`` is not a list; iterated, it mirrored the tags ``v`` and ``1``."""
    source = hostile.ref("stringtags/app")
    run = sync(tmp_path, [{"source": source, "destination": f"{target.host}/{unique_repo}", "selector": EVERY_TAG}])
    assert_no_traceback(run)
    mirrored = images.list_tags(target, unique_repo) if unique_repo in images.catalog(target) else []
    assert mirrored == [], f'"tags": "v1" mirrored the tags {mirrored}'
    result = run.report["report"]["results"][0]
    assert (run.code, result["status"], result["tags"]) == (1, "failed", [])
    assert result["error"].startswith(f"list tags {source}: ")


def test_referrer_subject_digest_never_addresses_another_repository(
    tmp_path: Path, hostile: HostileRegistry, registry_factory: RegistryFactory, unique_repo: str
) -> None:
    """Item 2: a referrer's ``subject.digest`` of ``x:/../../../../prod/app/manifests/latest`` made the
    destination's referrers probe and fallback-index read and write land on ``prod/app:latest``."""
    destination = registry_factory()
    with FaultProxy(destination, blob_host=False) as recorder:
        run = sync(
            tmp_path,
            [
                {
                    "source": hostile.ref("subject/app"),
                    "destination": f"{recorder.host}/{unique_repo}",
                    "includeReferrers": True,
                }
            ],
        )
        outside = {path for path in destination_paths(recorder) if not path.startswith(f"/v2/{unique_repo}/")}
    assert_no_traceback(run)
    assert outside <= {"/v2/"}, f"requests outside the destination repository: {sorted(outside)}"
    assert "prod/app" not in images.catalog(destination)
    assert [row["tag"] for row in run.rows()] == ["1.0.0"]


def test_link_into_another_repository_is_not_followed(
    tmp_path: Path, hostile: HostileRegistry, target: Registry, unique_repo: str
) -> None:
    """Item 2: a same-host ``Link`` into ``otherrepo/elsewhere`` would pass that repository's tags off
    as this one's."""
    source = hostile.ref("otherrepo/link")
    run = sync(tmp_path, [{"source": source, "destination": f"{target.host}/{unique_repo}", "selector": EVERY_TAG}])
    assert_no_traceback(run)
    assert [r.query for r in hostile.requests if r.path == "/v2/otherrepo/elsewhere/tags/list"] == []
    assert "9.9.9-elsewhere" not in [row["tag"] for row in run.report["report"]["results"][0]["tags"]]


def test_upload_location_into_another_repository_is_not_used(
    tmp_path: Path, hostile: HostileRegistry, registry: Registry, unique_repo: str
) -> None:
    """Item 2: the destination's upload POST answers with a session inside ``prod/app``."""
    images.push(registry, unique_repo, "1.0.0", images.make_artifact(seed=0x2201))
    config = [{"source": f"{registry.host}/{unique_repo}", "destination": hostile.ref("otherrepo/upload")}]
    run = sync(tmp_path, config)
    assert_no_traceback(run)
    assert any(r.method == "POST" for r in hostile.requests), "the upload was never started"
    written = [(r.method, r.path) for r in hostile.requests if r.path.startswith("/v2/prod/")]
    assert written == [], f"bytes sent into another repository: {written}"


# -- 3. Credentials follow Link and upload Location to other hosts --------------------------------


def test_tag_list_link_to_another_host_gets_no_credentials(
    tmp_path: Path, hostile_factory: HostileFactory, target: Registry, unique_repo: str
) -> None:
    """Item 3: page 1 of the tag list links, absolutely, to the attacker."""
    hostile = hostile_factory(credentials=HOSTILE_USER)
    run = sync(
        tmp_path, [entry_from(hostile, "crosslink/tags", target, unique_repo)], env=hostile_auth_env(tmp_path, hostile)
    )
    assert_no_traceback(run)
    assert any(r.auth_scheme == "Basic" for r in hostile.requests if r.path.endswith("/tags/list"))
    leaked = [(r.method, r.path, r.auth_scheme) for r in hostile.attacker_requests if r.had_authorization]
    assert leaked == [], f"the attacker received credentials: {leaked}"


def test_referrers_link_to_another_host_gets_no_credentials(
    tmp_path: Path, hostile_factory: HostileFactory, target: Registry, unique_repo: str
) -> None:
    """Item 3: page 1 of the referrers listing links to the attacker."""
    hostile = hostile_factory(credentials=HOSTILE_USER)
    config = [entry_from(hostile, "crosslink/referrers", target, unique_repo, includeReferrers=True)]
    run = sync(tmp_path, config, env=hostile_auth_env(tmp_path, hostile))
    assert_no_traceback(run)
    assert any(r.auth_scheme == "Basic" for r in hostile.requests if "/referrers/referrers/" in r.path)
    leaked = [(r.method, r.path, r.auth_scheme) for r in hostile.attacker_requests if r.had_authorization]
    assert leaked == [], f"the attacker received credentials: {leaked}"


def test_upload_location_on_another_host_gets_no_credentials(
    tmp_path: Path, hostile_factory: HostileFactory, registry: Registry, unique_repo: str
) -> None:
    """Item 3: the destination's upload POST answers with a ``Location`` on the attacker."""
    hostile = hostile_factory(credentials=HOSTILE_USER)
    images.push(registry, unique_repo, "1.0.0", images.make_artifact(seed=0x3301))
    config = [{"source": f"{registry.host}/{unique_repo}", "destination": hostile.ref("crosslink/upload")}]
    run = sync(tmp_path, config, env=hostile_auth_env(tmp_path, hostile))
    assert_no_traceback(run)
    assert any(r.auth_scheme == "Basic" for r in hostile.requests if r.method == "POST")
    leaked = [(r.method, r.path, r.auth_scheme) for r in hostile.attacker_requests if r.had_authorization]
    assert leaked == [], f"the attacker received credentials: {leaked}"


def test_bearer_realm_on_another_host_gets_only_the_token_request(
    tmp_path: Path, hostile_factory: HostileFactory, target: Registry, unique_repo: str
) -> None:
    """Item 3: a realm on another (plain-HTTP) host is sent the credential the token flow needs, and
    nothing more: only token GETs, with Basic, never a registry request or a Bearer token."""
    hostile = hostile_factory(credentials=HOSTILE_USER, realm_on_attacker=True)
    run = sync(
        tmp_path, [entry_from(hostile, "plain/app", target, unique_repo)], env=hostile_auth_env(tmp_path, hostile)
    )
    assert_no_traceback(run)
    assert (run.code, [row["status"] for row in run.rows()]) == (0, ["copied"])
    seen = {(r.method, r.path, r.auth_scheme) for r in hostile.attacker_requests}
    assert seen == {("GET", "/token", "Basic")}


# -- 4. A bad tag list crashes the run -------------------------------------------------------------


@pytest.mark.parametrize(
    ("repository", "selector"),
    [
        ("badlist/notjson", None),
        ("badlist/array", None),
        ("badlist/nonstring", None),
    ],
)
def test_malformed_tag_list_fails_only_its_entry(
    tmp_path: Path,
    hostile: HostileRegistry,
    registry: Registry,
    target: Registry,
    unique_repo: str,
    repository: str,
    selector: dict[str, Any] | None,
) -> None:
    """Item 4: the hostile entry fails at planning (``list tags <source>: …``); the next entry still
    runs, the report is printed, exit 1, no traceback."""
    run = run_bad_then_good(tmp_path, hostile, registry, target, unique_repo, repository, selector)
    bad = run.report["report"]["results"][0]
    assert (bad["status"], bad["tags"]) == ("failed", [])
    assert bad["error"].startswith(f"list tags {hostile.ref(repository)}: ")
    assert run.code == 1


@pytest.mark.parametrize(
    ("repository", "selector"),
    [
        ("badlist/bigdigits", None),  # the default sort is semver: the tag is parsed as a version
        ("badlist/surrogate", EVERY_TAG),
    ],
)
def test_unusable_tag_is_contained_in_its_entry(
    tmp_path: Path,
    hostile: HostileRegistry,
    registry: Registry,
    target: Registry,
    unique_repo: str,
    repository: str,
    selector: dict[str, Any] | None,
) -> None:
    """Item 4: a 5000-digit tag and a lone surrogate are not valid tags, so (item 2) they are skipped:
    the entry completes with no row, the next entry runs, the report is printed, exit 0."""
    run = run_bad_then_good(tmp_path, hostile, registry, target, unique_repo, repository, selector)
    bad = run.report["report"]["results"][0]
    assert (bad["status"], bad["tags"], run.code) == ("completed", [], 0)


def test_backtracking_selector_cannot_stall_planning(
    tmp_path: Path, hostile: HostileRegistry, target: Registry, unique_repo: str
) -> None:
    """Item 6: selectors run in RE2, as Go's regexp does, so a nested quantifier on a long tag is
    linear; with Python's backtracking ``re`` this planning would never end."""
    selector = {"regex": {"pattern": r"^(\d+\.?)+$"}, "sortBy": "alphabetical", "limit": 0}
    source = {
        "source": hostile.ref("backtrack/app"),
        "destination": f"{target.host}/{unique_repo}",
        "selector": selector,
    }
    run = sync(tmp_path, [source], "--verbose", timeout=60)
    assert_no_traceback(run)
    assert (run.code, [(row["tag"], row["status"]) for row in run.rows()]) == (0, [("1.0.0", "copied")])
    assert f'tag={BACKTRACK_TAG} reason="did not match regex"' in run.stderr


def run_bad_then_good(
    tmp_path: Path,
    hostile: HostileRegistry,
    registry: Registry,
    target: Registry,
    unique_repo: str,
    repository: str,
    selector: dict[str, Any] | None,
) -> Run:
    """The hostile entry first, then a healthy one; checks what every bad-list case shares."""
    artifact = images.make_artifact(seed=0x4401)
    images.push(registry, unique_repo, "1.0.0", artifact)
    bad: dict[str, Any] = {"source": hostile.ref(repository), "destination": f"{target.host}/{unique_repo}-bad"}
    if selector is not None:
        bad["selector"] = selector
    run = sync(tmp_path, [bad, entry(registry, target, unique_repo)])
    assert_no_traceback(run)
    assert run.stdout, f"no report printed; stderr: {run.stderr[-2000:]}"
    assert run.rows(1) == [{"tag": "1.0.0", "status": "copied", "digest": artifact.digest}]
    assert f"{unique_repo}-bad" not in images.catalog(target)
    return run


# -- 8. Secrets and raw control characters in what registries say ----------------------------------


@pytest.mark.parametrize(
    ("options", "repository"),
    [
        ({"credentials": HOSTILE_USER}, "echo/app"),  # 400 echoing `Authorization: Basic …`
        ({"credentials": HOSTILE_USER, "bearer": True}, "echo/app"),  # 400 echoing `Authorization: Bearer …`
        ({"credentials": HOSTILE_USER, "bearer": True}, "echo/token"),  # the token endpoint's 401 echoes Basic
    ],
    ids=["basic", "bearer", "token-endpoint"],
)
@pytest.mark.parametrize("output", ["json", "text-verbose"])
def test_error_bodies_echoing_the_request_never_print_credentials(
    tmp_path: Path,
    hostile_factory: HostileFactory,
    target: Registry,
    unique_repo: str,
    options: dict[str, Any],
    repository: str,
    output: str,
) -> None:
    """Item 8: a server that echoes the request in its error body must not get the credential printed."""
    hostile = hostile_factory(**options)
    flags = ("--verbose",) if output == "text-verbose" else ()
    run = sync(
        tmp_path,
        [entry_from(hostile, repository, target, unique_repo)],
        *flags,
        env=hostile_auth_env(tmp_path, hostile),
        output=output.split("-")[0],
    )
    assert_no_traceback(run)
    assert run.code == 1
    assert any(
        r.had_authorization for r in hostile.requests if repository.split("/")[1] in r.path or r.path == "/token"
    )
    printed = run.stdout + run.stderr
    leaked = [secret for secret in secrets_of(hostile) if secret in printed]
    assert leaked == [], f"credentials printed: {leaked}\n{printed[-2000:]}"


@pytest.mark.parametrize("flags", [(), ("--verbose",)], ids=["text", "text-verbose"])
def test_control_characters_from_the_registry_never_reach_the_terminal_raw(
    tmp_path: Path, hostile: HostileRegistry, target: Registry, unique_repo: str, flags: tuple[str, ...]
) -> None:
    """Item 8: ESC sequences and U+202E in an error message and in tag names are shown escaped, or not at all."""
    config: list[dict[str, Any]] = [
        {"source": hostile.ref("ansi/message"), "destination": f"{target.host}/{unique_repo}-message"},
        {"source": hostile.ref("ansi/tags"), "destination": f"{target.host}/{unique_repo}", "selector": EVERY_TAG},
    ]
    run = sync(tmp_path, config, *flags, output="text")
    assert_no_traceback(run)
    printed = run.stdout + run.stderr
    assert "DENIED" in printed  # the failure itself is still reported
    assert ESC not in printed, f"raw ESC printed: {[line for line in printed.splitlines() if ESC in line]!r}"
    assert BIDI not in printed, f"raw U+202E printed: {[line for line in printed.splitlines() if BIDI in line]!r}"
    assert all(tag not in images.catalog(target) for tag in ANSI_TAGS)


# -- 12. A TLS failure on a redirected blob download ------------------------------------------------


def test_untrusted_certificate_behind_a_blob_redirect_fails_the_row_at_once(
    tmp_path: Path, hostile: HostileRegistry, target: Registry, unique_repo: str
) -> None:
    """Item 12: blob GETs redirect to an HTTPS host whose certificate nobody trusts. The row fails with
    the TLS error itself, with ``--retries 0``, long before the job deadline."""
    run = sync(
        tmp_path,
        [entry_from(hostile, "tls/redirect", target, unique_repo)],
        "--retries",
        "0",
        "--timeout",
        "20s",
        timeout=60,
    )
    assert hostile.untrusted_requests == []
    [row] = run.rows()
    assert (run.code, row["status"]) == (1, "failed")
    assert "deadline" not in row["error"], row["error"]
    assert "certificate" in row["error"], row["error"]
    assert run.elapsed < 10, f"took {run.elapsed:.1f}s"
    assert_no_traceback(run)


def entry_from(
    hostile: HostileRegistry, repository: str, destination: Registry, repo: str, **extra: Any
) -> dict[str, Any]:
    """An ``artifacts[]`` entry from a hostile repository to ``destination/repo``."""
    return {"source": hostile.ref(repository), "destination": f"{destination.host}/{repo}", **extra}
