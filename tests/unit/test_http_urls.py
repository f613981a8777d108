"""URLs in messages: what stays legible and what never appears."""

from __future__ import annotations

from fluxmirror.http.urls import redact_url


def test_query_values_and_the_user_info_are_hidden() -> None:
    assert (
        redact_url("https://user:pw@h.io:8443/i.yaml?token=s3cret&x=")
        == "https://h.io:8443/i.yaml?token=REDACTED&x=REDACTED"
    )


def test_registry_urls_keep_paging_and_digests_but_not_upload_state() -> None:
    url = "http://r.io/v2/a/blobs/uploads/u?_state=s3cret&digest=sha256:ab&n=10&last=b"
    assert redact_url(url) == "http://r.io/v2/a/blobs/uploads/u?_state=REDACTED&digest=sha256:ab&n=10&last=b"
