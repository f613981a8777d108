"""The --verbose log format: `YYYY/MM/DD HH:MM:SS message key=value …` as the reference writes it."""

from __future__ import annotations

import io
import logging
import os
import re
import time
from collections.abc import Iterator

import pytest

from fluxmirror.api.duration import Duration
from fluxmirror.sync.logfmt import LOGGER_NAME, VerboseFormatter, configure_verbose_logging, kv


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("ghcr.io/foo/bar:1.0", "ghcr.io/foo/bar:1.0"),
        ("", ""),
        ("a b", '"a b"'),
        ("a\tb", '"a\\tb"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("a=b", '"a=b"'),
        ("did not match regex", '"did not match regex"'),
        ("key not semver: 1.x", '"key not semver: 1.x"'),
        ("new\nline", '"new\\nline"'),  # fluxmirror: a registry cannot forge a log line
        ("bidi\u202eoverride", '"bidi\\u202eoverride"'),
        ("back\\slash", "back\\slash"),
        ("café au lait", '"café au lait"'),
        ("ctl\x01 x", '"ctl\\x01 x"'),
        ("GET https://r.example/v2/: 401 Unauthorized", '"GET https://r.example/v2/: 401 Unauthorized"'),
        (3, "3"),
        (0, "0"),
        (True, "true"),
        (False, "false"),
        (None, "<nil>"),
        (Duration(812_000_000), "812ms"),
        (Duration(4_213_000_000), "4.213s"),
        (Duration.parse("5m"), "5m0s"),
        (Duration(0), "0s"),
        (ValueError("connection refused"), '"connection refused"'),
    ],
)
def test_value_quoting(value: object, written: str) -> None:
    assert kv("msg", k=value) == f"msg k={written}"


def test_keys_keep_the_given_order() -> None:
    line = kv(
        "sync complete",
        entries=3,
        copied=1,
        overwritten=0,
        skipped=1,
        drifted=0,
        **{"would-copy": 2},
        failed=1,
        duration=Duration(4_213_000_000),
    )
    assert (
        line
        == "sync complete entries=3 copied=1 overwritten=0 skipped=1 drifted=0 would-copy=2 failed=1 duration=4.213s"
    )


def test_message_may_share_a_name_with_a_key() -> None:
    assert kv("plan failed", message="x y") == 'plan failed message="x y"'


def test_message_without_values_is_unchanged() -> None:
    assert kv("destination tag drifted from source; skipping (overwrite=false)") == (
        "destination tag drifted from source; skipping (overwrite=false)"
    )


@pytest.fixture
def utc_plus_two() -> Iterator[None]:
    """Local time two hours ahead of UTC (a POSIX TZ string, so no tz database is needed)."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "XYZ-2"
    time.tzset()
    yield
    if previous is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = previous
    time.tzset()


@pytest.mark.usefixtures("utc_plus_two")
def test_formatter_writes_local_time_and_no_level() -> None:
    record = logging.LogRecord(LOGGER_NAME, logging.WARNING, __file__, 1, "sync started entries=%d", (3,), None)
    record.created = 1_778_662_800.75  # 2026-05-13 09:00:00.75 UTC
    assert VerboseFormatter().format(record) == "2026/05/13 11:00:00 sync started entries=3"


def test_configure_verbose_logging_and_undo() -> None:
    logger = logging.getLogger(LOGGER_NAME)
    level = logger.level
    handlers = list(logger.handlers)
    stream = io.StringIO()
    undo = configure_verbose_logging(stream)
    try:
        logging.getLogger(f"{LOGGER_NAME}.sync").info(kv("tag done", src="a:1", status="copied"))
        logger.debug("hidden")
    finally:
        undo()
    logger.info("after undo")
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} tag done src=a:1 status=copied\n", stream.getvalue())
    assert logger.level == level
    assert logger.handlers == handlers
