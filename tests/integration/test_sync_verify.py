"""`sync` with `verify`: cosign bundles and legacy `.sig` signatures made by the virtual Sigstore,
pushed to the real docker-registry (no referrers API, so the `sha256-<hex>` tag-schema index), and
verified against its trusted root given with `--trusted-root`.

Every row is checked as the report spells it (clarifications §4, report.md): the `verification`
block of a copied or deferred tag, the exact error of a verify-failed row (no digest, no
verification), and where a failure stops the entry's plan.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from harness import images
from harness.referrers import SIGSTORE, fallback_tag
from harness.registry import Registry
from harness.runner import Run, entry, sync
from harness.sigstore import VirtualSigstore, push_bundle_referrer, push_legacy_signature
from harness.tufrepo import TRUSTED_ROOT, TufRepository
from registry.fixtures import OCIRegistryFactory

pytestmark = pytest.mark.registry

ISSUER = "https://token.actions.githubusercontent.com"
SAN = "https://github.com/example/app/.github/workflows/release.yml@refs/tags/{tag}"
SUBJECT = r"^https://github\.com/example/.*$"
HOUR = timedelta(hours=1)

Signer = Callable[[images.Manifest, str], None]


def verify_block(*, subject: str = SUBJECT, issuer: str = ISSUER, min_age: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"provider": "cosign", "matchOIDCIdentity": [{"issuer": issuer, "subject": subject}]}
    if min_age is not None:
        block["minAge"] = min_age
    return block


def ago(delta: timedelta) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - delta


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def verification(tag: str, signed_at: datetime, **extra: str) -> dict[str, str]:
    """The `verification` block of a tag signed by the test identity at `signed_at`."""
    block = {
        "provider": "cosign",
        "issuer": ISSUER,
        "identity": SAN.format(tag=tag),
        "integratedTime": rfc3339(signed_at),
    }
    return {**block, **extra}


def push_tags(registry: Registry, repo: str, tags: list[str], sign: Signer | None) -> dict[str, images.Manifest]:
    pushed = {}
    for number, tag in enumerate(tags):
        image = images.make_artifact(seed=hash((repo, tag)) & 0xFFFF)
        images.push(registry, repo, tag, image)
        if sign is not None:
            sign(image, tag)
        pushed[tag] = image
        del number
    return pushed


def bundle_signer(
    registry: Registry, repo: str, sigstore: VirtualSigstore, *, signed_at: datetime | None = None, **knobs: Any
) -> Signer:
    def sign(image: images.Manifest, tag: str) -> None:
        bundle = sigstore.sign_bundle(
            image.digest, san=SAN.format(tag=tag), issuer=ISSUER, signed_at=signed_at or ago(72 * HOUR), **knobs
        )
        push_bundle_referrer(registry, repo, image, bundle, fallback=True)

    return sign


def mirror(
    tmp_path: Path, registry: Registry, repo: str, trusted_root: Path, verify: dict[str, Any], *flags: str, **extra: Any
) -> Run:
    spec = entry(registry, registry, repo, f"{repo}-m", selector={"limit": 0}, verify=verify, **extra)
    return sync(tmp_path, [spec], "--trusted-root", str(trusted_root), *flags)


def failed_row(run: Run, source: str, tag: str) -> str:
    [row] = [row for row in run.rows() if row["tag"] == tag]
    assert set(row) == {"tag", "status", "error"}, row  # no digest, no verification
    assert row["status"] == "failed"
    prefix = f"verify {source}:{tag}: "
    assert row["error"].startswith(prefix), row["error"]
    return str(row["error"])[len(prefix) :]


def test_a_valid_signature_copies_the_tag_with_its_verification(
    tmp_path: Path, registry: Registry, virtual_sigstore: VirtualSigstore, trusted_root_path: Path, unique_repo: str
) -> None:
    signed_at = ago(72 * HOUR)
    pushed = push_tags(
        registry, unique_repo, ["1.0.0"], bundle_signer(registry, unique_repo, virtual_sigstore, signed_at=signed_at)
    )
    run = mirror(tmp_path, registry, unique_repo, trusted_root_path, verify_block(min_age="48h"))
    assert run.code == 0, run.stdout + run.stderr
    assert run.rows() == [
        {
            "tag": "1.0.0",
            "status": "copied",
            "digest": pushed["1.0.0"].digest,
            "verification": verification("1.0.0", signed_at),
        }
    ]
    assert images.get_manifest(registry, f"{unique_repo}-m", "1.0.0").digest == pushed["1.0.0"].digest


@pytest.mark.parametrize(
    ("verify", "knobs", "detail"),
    [
        pytest.param(
            verify_block(subject=r"^https://github\.com/other/.*$"),
            {},
            "signature verification failed: failed to verify certificate identity: no matching CertificateIdentity "
            'found, last error: expected SAN value to match regex "^https://github\\.com/other/.*$", got "{san}"',
            id="san-mismatch",
        ),
        pytest.param(
            verify_block(issuer="https://accounts.google.com"),
            {},
            "signature verification failed: failed to verify certificate identity: no matching CertificateIdentity "
            f'found, last error: expected Issuer to be "https://accounts.google.com", got "{ISSUER}"',
            id="issuer-mismatch",
        ),
        pytest.param(
            verify_block(),
            {"subject_digest": "sha256:" + "ab" * 32},
            "signature verification failed: provided artifact digest does not match any digest in statement",
            id="other-digest",
        ),
        pytest.param(
            verify_block(), {"tamper": "signature"}, "signature verification failed: DSSE: invalid signature", id="sig"
        ),
        pytest.param(
            verify_block(),
            {"tamper": "payload"},
            "signature verification failed: DSSE: invalid signature",
            id="payload",
        ),
        pytest.param(
            verify_block(),
            {"expired": True},
            "signature verification failed: failed to build timestamp certificate chain",
            id="expired-certificate",
        ),
        pytest.param(
            verify_block(),
            {"tamper": "set_foreign_key"},
            "signature verification failed: invalid log entry: SET: invalid inclusion promise",
            id="foreign-set",
        ),
        pytest.param(
            verify_block(),
            {"no_sct": True},
            "signature verification failed: failed to verify SCT",
            id="no-sct",
        ),
    ],
)
def test_a_bad_signature_fails_the_tag_with_the_documented_row(
    tmp_path: Path,
    registry: Registry,
    virtual_sigstore: VirtualSigstore,
    trusted_root_path: Path,
    unique_repo: str,
    verify: dict[str, Any],
    knobs: dict[str, Any],
    detail: str,
) -> None:
    push_tags(registry, unique_repo, ["1.0.0"], bundle_signer(registry, unique_repo, virtual_sigstore, **knobs))
    run = mirror(tmp_path, registry, unique_repo, trusted_root_path, verify)
    assert run.code == 1
    assert failed_row(run, f"{registry.host}/{unique_repo}", "1.0.0").startswith(
        detail.format(san=SAN.format(tag="1.0.0"))
    )
    assert run.report["report"]["results"][0]["status"] == "completed"
    assert images.tags_of(registry, f"{unique_repo}-m") == []


def test_a_signature_from_another_sigstore_is_untrusted(
    tmp_path: Path, registry: Registry, other_sigstore: VirtualSigstore, trusted_root_path: Path, unique_repo: str
) -> None:
    push_tags(registry, unique_repo, ["1.0.0"], bundle_signer(registry, unique_repo, other_sigstore))
    run = mirror(tmp_path, registry, unique_repo, trusted_root_path, verify_block())
    assert failed_row(run, f"{registry.host}/{unique_repo}", "1.0.0").startswith(
        "signature verification failed: failed to build timestamp certificate chain"
    )


def test_an_unsigned_tag_has_no_bundle(
    tmp_path: Path, registry: Registry, trusted_root_path: Path, unique_repo: str
) -> None:
    push_tags(registry, unique_repo, ["1.0.0"], None)
    run = mirror(tmp_path, registry, unique_repo, trusted_root_path, verify_block())
    assert failed_row(run, f"{registry.host}/{unique_repo}", "1.0.0") == (
        "signature verification failed: no sigstore bundle found in referrers"
    )


def test_min_age_defers_a_new_signature_as_skipped(
    tmp_path: Path, registry: Registry, virtual_sigstore: VirtualSigstore, trusted_root_path: Path, unique_repo: str
) -> None:
    started = time.monotonic()
    signed_at = ago(HOUR)
    pushed = push_tags(
        registry, unique_repo, ["1.0.0"], bundle_signer(registry, unique_repo, virtual_sigstore, signed_at=signed_at)
    )
    run = mirror(tmp_path, registry, unique_repo, trusted_root_path, verify_block(min_age="48h"))
    took = time.monotonic() - started  # the age grows while the test runs: a loaded machine adds seconds
    assert run.code == 0, run.stderr
    [row] = run.rows()
    age = row["verification"].pop("age")
    assert row == {
        "tag": "1.0.0",
        "status": "skipped",
        "digest": pushed["1.0.0"].digest,
        "reason": "signature-too-new",
        "verification": verification("1.0.0", signed_at, minAge="48h0m0s"),
    }
    assert age in {f"1h0m{seconds}s" for seconds in range(int(took) + 3)}
    assert run.summary["skipped"] == 1
    assert images.tags_of(registry, f"{unique_repo}-m") == []


def test_the_first_failure_stops_the_entry_plan(
    tmp_path: Path, registry: Registry, virtual_sigstore: VirtualSigstore, trusted_root_path: Path, unique_repo: str
) -> None:
    """Tags are planned highest first: 3.0.0 verifies, 2.0.0 does not, so 1.0.0 (valid) gets no row."""
    good = bundle_signer(registry, unique_repo, virtual_sigstore)
    bad = bundle_signer(registry, unique_repo, virtual_sigstore, tamper="signature")

    def sign(image: images.Manifest, tag: str) -> None:
        (bad if tag == "2.0.0" else good)(image, tag)

    push_tags(registry, unique_repo, ["1.0.0", "2.0.0", "3.0.0"], sign)
    run = mirror(tmp_path, registry, unique_repo, trusted_root_path, verify_block())
    assert run.code == 1
    assert [(row["tag"], row["status"]) for row in run.rows()] == [("3.0.0", "copied"), ("2.0.0", "failed")]
    assert run.report["report"]["results"][0]["status"] == "completed"
    assert images.tags_of(registry, f"{unique_repo}-m") == ["3.0.0"]
    assert f"✗ {registry.host}/{unique_repo}:2.0.0" not in run.stdout  # json mode: no live lines


def test_the_signature_referrer_is_mirrored_and_still_verifies(
    tmp_path: Path, registry: Registry, virtual_sigstore: VirtualSigstore, trusted_root_path: Path, unique_repo: str
) -> None:
    push_tags(registry, unique_repo, ["1.0.0"], bundle_signer(registry, unique_repo, virtual_sigstore))
    run = mirror(tmp_path, registry, unique_repo, trusted_root_path, verify_block(), includeReferrers=True)
    assert run.code == 0, run.stderr
    [row] = run.rows()
    assert [(r["artifactType"], r["status"]) for r in row["referrers"]] == [(SIGSTORE, "copied")]
    # The mirror verifies in its turn: the statement names no repository, only the digest.
    again = sync(
        tmp_path,
        [entry(registry, registry, f"{unique_repo}-m", f"{unique_repo}-n", verify=verify_block())],
        "--trusted-root",
        str(trusted_root_path),
    )
    assert (again.code, again.rows()[0]["status"]) == (0, "copied")


def test_legacy_sig_signatures_verify(
    tmp_path: Path, registry: Registry, virtual_sigstore: VirtualSigstore, trusted_root_path: Path, unique_repo: str
) -> None:
    signed_at = ago(100 * HOUR)

    def sign(image: images.Manifest, tag: str) -> None:
        legacy = virtual_sigstore.legacy_signature(
            image.digest,
            docker_reference=f"{registry.host}/{unique_repo}",
            san=SAN.format(tag=tag),
            issuer=ISSUER,
            signed_at=signed_at,
        )
        push_legacy_signature(registry, unique_repo, image.digest, legacy)

    pushed = push_tags(registry, unique_repo, ["1.0.0"], sign)
    run = mirror(tmp_path, registry, unique_repo, trusted_root_path, verify_block(min_age="48h"))
    assert run.code == 0, run.stdout + run.stderr
    assert run.rows() == [
        {
            "tag": "1.0.0",
            "status": "copied",
            "digest": pushed["1.0.0"].digest,
            "verification": verification("1.0.0", signed_at),
        }
    ]


@pytest.mark.parametrize(
    ("knobs", "detail"),
    [
        ({"tamper": "signature"}, "signature does not verify over the payload"),
        ({"tamper": "payload"}, "Rekor entry is for another payload"),
        ({"tamper": "integrated_time"}, "signed entry timestamp does not verify with a trusted Rekor key"),
        ({"tamper": "set_foreign_key"}, "signed entry timestamp does not verify with a trusted Rekor key"),
        ({"expired": True}, "integrated time is outside the certificate's validity"),
        ({"no_sct": True}, "certificate carries no signed certificate timestamp"),
        ({"sct_key_foreign": True}, "no signed certificate timestamp from a trusted CT log"),
    ],
    ids=["signature", "payload", "integrated-time", "foreign-set", "expired", "no-sct", "foreign-sct"],
)
def test_a_bad_legacy_signature_fails(
    tmp_path: Path,
    registry: Registry,
    virtual_sigstore: VirtualSigstore,
    trusted_root_path: Path,
    unique_repo: str,
    knobs: dict[str, Any],
    detail: str,
) -> None:
    def sign(image: images.Manifest, tag: str) -> None:
        legacy = virtual_sigstore.legacy_signature(
            image.digest,
            docker_reference=f"{registry.host}/{unique_repo}",
            san=SAN.format(tag=tag),
            issuer=ISSUER,
            signed_at=ago(72 * HOUR),
            **knobs,
        )
        push_legacy_signature(registry, unique_repo, image.digest, legacy)

    push_tags(registry, unique_repo, ["1.0.0"], sign)
    run = mirror(tmp_path, registry, unique_repo, trusted_root_path, verify_block())
    assert failed_row(run, f"{registry.host}/{unique_repo}", "1.0.0") == f"signature verification failed: {detail}"


def test_any_valid_signature_verifies_and_the_oldest_is_reported(
    tmp_path: Path, registry: Registry, virtual_sigstore: VirtualSigstore, trusted_root_path: Path, unique_repo: str
) -> None:
    """A tampered bundle listed first, a valid recent bundle, and an older valid legacy signature:
    the tag verifies, and `minAge` and the block use the legacy one's older time."""
    oldest = ago(200 * HOUR)

    def sign(image: images.Manifest, tag: str) -> None:
        bundle_signer(registry, unique_repo, virtual_sigstore, tamper="payload")(image, tag)
        bundle_signer(registry, unique_repo, virtual_sigstore, signed_at=ago(HOUR))(image, tag)
        legacy = virtual_sigstore.legacy_signature(
            image.digest, docker_reference="x", san=SAN.format(tag=tag), issuer=ISSUER, signed_at=oldest
        )
        push_legacy_signature(registry, unique_repo, image.digest, legacy)

    push_tags(registry, unique_repo, ["1.0.0"], sign)
    run = mirror(tmp_path, registry, unique_repo, trusted_root_path, verify_block(min_age="48h"))
    assert run.code == 0, run.stdout + run.stderr
    [row] = run.rows()
    assert (row["status"], row["verification"]["integratedTime"]) == ("copied", rfc3339(oldest))


def test_a_missing_trusted_root_fails_the_entry_in_one_line(
    tmp_path: Path, registry: Registry, unique_repo: str
) -> None:
    push_tags(registry, unique_repo, ["1.0.0"], None)
    missing = tmp_path / "absent.json"
    run = mirror(tmp_path, registry, unique_repo, missing, verify_block())
    assert run.code == 1
    [result] = run.report["report"]["results"]
    assert (result["status"], result["tags"]) == ("failed", [])
    assert result["error"] == f"fetch trusted root: read trusted root {missing}: No such file or directory"


def test_a_pathological_subject_pattern_cannot_stall_verification(
    tmp_path: Path, registry: Registry, virtual_sigstore: VirtualSigstore, trusted_root_path: Path, unique_repo: str
) -> None:
    """`(a+)+$` against a long SAN of `a`s ending in `!` backtracks for ages in Python's `re`; RE2 is linear."""
    san = "a" * 5000 + "!"

    def sign(image: images.Manifest, tag: str) -> None:
        bundle = virtual_sigstore.sign_bundle(image.digest, san=san, issuer=ISSUER, signed_at=ago(HOUR), san_kind="uri")
        push_bundle_referrer(registry, unique_repo, image, bundle, fallback=True)

    push_tags(registry, unique_repo, ["1.0.0"], sign)
    started = time.monotonic()
    run = mirror(tmp_path, registry, unique_repo, trusted_root_path, verify_block(subject="(a+)+$"))
    assert time.monotonic() - started < 30
    assert failed_row(run, f"{registry.host}/{unique_repo}", "1.0.0").startswith(
        "signature verification failed: failed to verify certificate identity"
    )


# -- the trusted root through TUF -----------------------------------------------------------------------


def test_the_trusted_root_is_fetched_through_tuf_once_per_run(
    tmp_path: Path,
    registry: Registry,
    virtual_sigstore: VirtualSigstore,
    tuf_repository: TufRepository,
    unique_repo: str,
) -> None:
    """Two verifying entries, one TUF refresh; nothing lands in the home directory (no cache)."""
    tuf_repository.set_target(TRUSTED_ROOT, virtual_sigstore.trusted_root_json())
    tuf_root = tuf_repository.write_root(tmp_path / "tuf-root.json")
    for repo in (unique_repo, f"{unique_repo}-b"):
        push_tags(registry, repo, ["1.0.0"], bundle_signer(registry, repo, virtual_sigstore))
    home = tmp_path / "home"
    home.mkdir()
    env = {"FLUXMIRROR_TUF_URL": tuf_repository.url, "FLUXMIRROR_TUF_ROOT": str(tuf_root), "HOME": str(home)}
    entries = [
        entry(registry, registry, repo, f"{repo}-m", verify=verify_block())
        for repo in (unique_repo, f"{unique_repo}-b")
    ]
    run = sync(tmp_path, entries, env=env)
    assert run.code == 0, run.stdout + run.stderr
    assert [result["tags"][0]["verification"]["identity"] for result in run.report["report"]["results"]] == [
        SAN.format(tag="1.0.0")
    ] * 2
    assert tuf_repository.requests.count(tuf_repository.target_path(TRUSTED_ROOT)) == 1
    assert list(home.iterdir()) == []


def test_an_unreachable_tuf_repository_fails_verifying_entries_naming_trusted_root(
    tmp_path: Path, registry: Registry, tuf_repository: TufRepository, unique_repo: str
) -> None:
    tuf_root = tuf_repository.write_root(tmp_path / "tuf-root.json")
    tuf_repository.offline = True
    push_tags(registry, unique_repo, ["1.0.0"], None)
    env = {"FLUXMIRROR_TUF_URL": tuf_repository.url, "FLUXMIRROR_TUF_ROOT": str(tuf_root)}
    entries = [
        entry(registry, registry, unique_repo, f"{unique_repo}-v", verify=verify_block()),
        entry(registry, registry, unique_repo, f"{unique_repo}-plain"),
    ]
    run = sync(tmp_path, entries, env=env)
    assert run.code == 1
    verifying, plain = run.report["report"]["results"]
    assert verifying["status"] == "failed" and verifying["tags"] == []
    assert verifying["error"].startswith(f"fetch trusted root: {tuf_repository.url}: ")
    assert verifying["error"].endswith(
        "; pass --trusted-root FILE (or set FLUXMIRROR_TRUSTED_ROOT) to verify without the network"
    )
    assert "\n" not in verifying["error"]
    assert (plain["status"], plain["tags"][0]["status"]) == ("completed", "copied")


# -- the example report of report.md, end to end --------------------------------------------------------


def test_the_documented_example_report(
    tmp_path: Path, registry: Registry, virtual_sigstore: VirtualSigstore, trusted_root_path: Path, unique_repo: str
) -> None:
    """6.13.0 signed 47 hours ago is deferred by `minAge: 48h`; 6.12.0 signed weeks ago is copied with
    its signature referrer; the second entry's source does not exist and fails at plan time."""
    recent, old = ago(47 * HOUR), ago(400 * HOUR)

    def sign(image: images.Manifest, tag: str) -> None:
        bundle_signer(registry, unique_repo, virtual_sigstore, signed_at=recent if tag == "6.13.0" else old)(image, tag)

    pushed = push_tags(registry, unique_repo, ["6.12.0", "6.13.0"], sign)
    verify = verify_block(min_age="48h")
    entries = [
        entry(
            registry,
            registry,
            unique_repo,
            f"{unique_repo}-m",
            selector={"semver": "*", "limit": 0},
            verify=verify,
            includeReferrers=True,
        ),
        entry(registry, registry, f"{unique_repo}-nonexistent", f"{unique_repo}-n"),
    ]
    run = sync(tmp_path, entries, "--trusted-root", str(trusted_root_path))
    assert run.code == 1
    report = run.report["report"]
    assert report["summary"] == {
        "entries": 2,
        "copied": 1,
        "overwritten": 0,
        "skipped": 1,
        "drifted": 0,
        "wouldCopy": 0,
        "wouldOverwrite": 0,
        "failed": 1,
        "exitCode": 1,
    }
    first, second = report["results"]
    deferred = first["tags"][0]
    assert deferred["verification"].pop("age").startswith("47h0m")
    signature = json.loads(images.get_manifest(registry, unique_repo, fallback_tag(pushed["6.12.0"].digest)).data)
    assert first == {
        "source": f"{registry.host}/{unique_repo}",
        "destination": f"{registry.host}/{unique_repo}-m",
        "status": "completed",
        "tags": [
            {
                "tag": "6.13.0",
                "status": "skipped",
                "digest": pushed["6.13.0"].digest,
                "reason": "signature-too-new",
                "verification": verification("6.13.0", recent, minAge="48h0m0s"),
            },
            {
                "tag": "6.12.0",
                "status": "copied",
                "digest": pushed["6.12.0"].digest,
                "referrers": [
                    {"digest": signature["manifests"][0]["digest"], "artifactType": SIGSTORE, "status": "copied"}
                ],
                "verification": verification("6.12.0", old),
            },
        ],
    }
    assert (second["status"], second["tags"]) == ("failed", [])
    assert second["error"].startswith(f"list tags {registry.host}/{unique_repo}-nonexistent: ")
    mirrored = images.tags_of(registry, f"{unique_repo}-m")
    assert sorted(mirrored) == sorted(["6.12.0", fallback_tag(pushed["6.12.0"].digest)])  # the signature's index too


def test_text_output_of_a_verify_failure(
    tmp_path: Path, registry: Registry, virtual_sigstore: VirtualSigstore, trusted_root_path: Path, unique_repo: str
) -> None:
    push_tags(registry, unique_repo, ["1.0.0"], bundle_signer(registry, unique_repo, virtual_sigstore))
    spec = entry(registry, registry, unique_repo, f"{unique_repo}-m", verify=verify_block(subject="^nobody$"))
    run = sync(tmp_path, [spec], "--trusted-root", str(trusted_root_path), output="text")
    source = f"{registry.host}/{unique_repo}"
    assert run.code == 1
    assert run.stdout.startswith(
        f"✗ {source}:1.0.0 — verify {source}:1.0.0: signature verification failed: failed to verify certificate "
        f'identity: no matching CertificateIdentity found, last error: expected SAN value to match regex "^nobody$", '
        f'got "{SAN.format(tag="1.0.0")}"\n→ {registry.host}/{unique_repo}-m:1.0.0\n'
    )


@pytest.mark.parametrize(
    ("signed_digest", "verify", "detail"),
    [
        ("sha256:" + "cd" * 32, verify_block(), 'signed payload is for another image: "sha256:' + "cd" * 32 + '"'),
        (
            None,
            verify_block(subject="^https://gitlab"),
            "failed to verify certificate identity: no matching CertificateIdentity found, last error: expected SAN "
            'value to match regex "^https://gitlab", got "{san}"',
        ),
    ],
    ids=["other-image", "identity"],
)
def test_a_legacy_signature_for_another_image_or_signer_fails(
    tmp_path: Path,
    registry: Registry,
    virtual_sigstore: VirtualSigstore,
    trusted_root_path: Path,
    unique_repo: str,
    signed_digest: str | None,
    verify: dict[str, Any],
    detail: str,
) -> None:
    def sign(image: images.Manifest, tag: str) -> None:
        legacy = virtual_sigstore.legacy_signature(
            signed_digest or image.digest,
            docker_reference="x",
            san=SAN.format(tag=tag),
            issuer=ISSUER,
            signed_at=ago(HOUR),
        )
        push_legacy_signature(registry, unique_repo, image.digest, legacy)

    push_tags(registry, unique_repo, ["1.0.0"], sign)
    run = mirror(tmp_path, registry, unique_repo, trusted_root_path, verify)
    assert failed_row(run, f"{registry.host}/{unique_repo}", "1.0.0") == (
        "signature verification failed: " + detail.format(san=SAN.format(tag="1.0.0"))
    )


# -- the verification cache (--state-dir) -----------------------------------------------------------------


def test_a_state_dir_remembers_verified_signatures(
    tmp_path: Path,
    oci_registry_factory: OCIRegistryFactory,
    virtual_sigstore: VirtualSigstore,
    trusted_root_path: Path,
    unique_repo: str,
) -> None:
    """The second run fetches no signature (no referrer manifest, no bundle blob) and reports the same
    rows; the remembered entries are private to the state directory's owner."""
    server = oci_registry_factory()
    source = server.registry
    signed_at = ago(72 * HOUR)

    def sign(image: images.Manifest, tag: str) -> None:
        bundle = virtual_sigstore.sign_bundle(image.digest, san=SAN.format(tag=tag), issuer=ISSUER, signed_at=signed_at)
        push_bundle_referrer(source, unique_repo, image, bundle, fallback=False)

    push_tags(source, unique_repo, ["1.0.0", "2.0.0"], sign)
    state = tmp_path / "state"
    first = mirror(tmp_path, source, unique_repo, trusted_root_path, verify_block(), "--state-dir", str(state))
    assert first.code == 0, first.stdout + first.stderr
    server.reset()
    again = mirror(tmp_path, source, unique_repo, trusted_root_path, verify_block(), "--state-dir", str(state))
    assert again.code == 0, again.stdout + again.stderr
    assert again.rows() == [{**row, "status": "skipped", "reason": "up-to-date"} for row in first.rows()]
    fetched = [request.target for request in server.requests if request.method == "GET"]
    assert not [target for target in fetched if "/blobs/" in target or "/referrers/" in target], fetched
    entries = [path for path in (state / "verified").rglob("*") if path.is_file()]
    assert len(entries) == 2 and all(path.stat().st_mode & 0o777 == 0o600 for path in entries)
    assert (state / "verified").stat().st_mode & 0o777 == 0o700


def test_remembered_verdicts_are_bound_to_the_identities_and_the_root(
    tmp_path: Path,
    registry: Registry,
    virtual_sigstore: VirtualSigstore,
    other_sigstore: VirtualSigstore,
    trusted_root_path: Path,
    unique_repo: str,
) -> None:
    """A verdict remembered for one policy is no verdict for another, nor for another trusted root."""
    push_tags(registry, unique_repo, ["1.0.0"], bundle_signer(registry, unique_repo, virtual_sigstore))
    state = str(tmp_path / "state")
    assert mirror(tmp_path, registry, unique_repo, trusted_root_path, verify_block(), "--state-dir", state).code == 0
    other_policy = mirror(
        tmp_path, registry, unique_repo, trusted_root_path, verify_block(subject="^nobody$"), "--state-dir", state
    )
    assert failed_row(other_policy, f"{registry.host}/{unique_repo}", "1.0.0").startswith(
        "signature verification failed: failed to verify certificate identity"
    )
    other_root = other_sigstore.write_trusted_root(tmp_path / "other-root.json")
    foreign = mirror(tmp_path, registry, unique_repo, other_root, verify_block(), "--state-dir", state)
    assert failed_row(foreign, f"{registry.host}/{unique_repo}", "1.0.0").startswith(
        "signature verification failed: failed to build timestamp certificate chain"
    )
