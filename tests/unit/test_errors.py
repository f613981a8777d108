"""The error tree: context keeps the class, retry advice and status; defects and server text end as
one safe line."""

from __future__ import annotations

import pytest
import typer.main

from fluxmirror.cli import app as cli_app
from fluxmirror.cli.terminal import terminal_safe
from fluxmirror.errors import FluxMirrorError, unexpected
from fluxmirror.http.errors import TransportError
from fluxmirror.oci.errors import RegistryError
from fluxmirror.scrub import remember, scrub


def test_prefixed_keeps_the_class_status_and_retry_advice() -> None:
    error = RegistryError("GET", "https://r.io/v2/a/manifests/x", 503, b"", retry_after=2.0)
    wrapped = error.prefixed("digest r.io/a:x")
    assert type(wrapped) is RegistryError
    assert (wrapped.status, wrapped.retry_after, wrapped.temporary) == (503, 2.0, True)
    assert (
        str(wrapped)
        == "digest r.io/a:x: GET https://r.io/v2/a/manifests/x: unexpected status code 503 Service Unavailable"
    )
    assert str(error).startswith("GET ")  # the original is untouched


def test_temporary_is_a_constructor_argument() -> None:
    assert FluxMirrorError("x").temporary is False
    assert FluxMirrorError("x", temporary=True).temporary is True
    assert TransportError("x").temporary is True
    assert TransportError("x", temporary=False).prefixed("ctx").temporary is False


@pytest.mark.parametrize(
    ("body", "temporary"),
    [
        (b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}', True),
        (b'{"errors":[{"code":"UNAVAILABLE","message":"later"}]}', True),
        (b'{"errors":[{"code":"DENIED","message":"no"}]}', False),
    ],
)
def test_busy_diagnostics_are_temporary_whatever_the_status(body: bytes, temporary: bool) -> None:
    error = RegistryError("GET", "https://r.io/v2/a/tags/list", 400, body)
    assert error.temporary is temporary
    assert error.diagnostics[0].code in str(error)


def test_diagnostics_keep_code_message_and_detail() -> None:
    body = b'{"errors":[{"code":"DENIED","message":"no","detail":{"Name":"a","Action":"push"}}]}'
    (diagnostic,) = RegistryError("PUT", "https://r.io/v2/a/manifests/x", 403, body).diagnostics
    assert (diagnostic.code, diagnostic.message, diagnostic.detail) == ("DENIED", "no", {"Name": "a", "Action": "push"})
    assert str(diagnostic) == "DENIED: no; map[Action:push Name:a]"


def test_echoed_credentials_are_scrubbed_from_quoted_bodies() -> None:
    remember("s3cret-registry-token")
    body = b"you sent Authorization: Basic dXNlcjpwYXNzd29yZA== and token=s3cret-registry-token"
    message = str(RegistryError("GET", "https://r.io/v2/", 500, body))
    assert "dXNlcjpwYXNzd29yZA" not in message
    assert "s3cret-registry-token" not in message
    assert "Basic REDACTED" in message


def test_scrub_leaves_short_values_and_ordinary_words_alone() -> None:
    remember("ab")
    assert scrub("a basic table") == "a basic table"
    assert scrub("Bearer eyJhbGciOi.x-y_z") == "Bearer REDACTED"


def test_unexpected_is_one_escaped_line() -> None:
    assert unexpected(KeyError("tags")) == "internal error: KeyError: 'tags'"
    assert unexpected(ValueError("a\nb")) == "internal error: ValueError: a b"
    assert unexpected(ValueError("\x1b[2J")) == "internal error: ValueError: \\x1b[2J"
    assert unexpected(RuntimeError()) == "internal error: RuntimeError"


def test_terminal_safe_escapes_controls_and_bidi_but_keeps_line_breaks() -> None:
    assert terminal_safe("ok\x1b[31m\r\u202etxt\u0085\n") == "ok\\x1b[31m\\x0d\\u202etxt\\u0085\n"
    assert terminal_safe("café ✓") == "café ✓"


def test_main_turns_a_defect_into_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise ZeroDivisionError("division by zero\x1b")

    monkeypatch.setattr(typer.main, "get_command", lambda _app: type("C", (), {"main": broken})())
    assert cli_app.main(["version"]) == 1
    captured = capsys.readouterr()
    assert captured.err == "✗ internal error: ZeroDivisionError: division by zero\\x1b\n"
    assert "Traceback" not in captured.err


def _exceptions_defined_in_fluxmirror() -> set[str]:
    import importlib
    import inspect
    import pkgutil

    import fluxmirror

    names: set[str] = set()
    for module_info in pkgutil.walk_packages(fluxmirror.__path__, "fluxmirror."):
        if module_info.name == "fluxmirror.__main__":
            continue  # running it is its only job
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, Exception) and value.__module__ == module.__name__:
                names.add(name)
    return names


def test_the_errors_docstring_names_every_exception_class() -> None:
    import fluxmirror.errors

    documented = fluxmirror.errors.__doc__ or ""
    missing = {name for name in _exceptions_defined_in_fluxmirror() if not name.startswith("_")}
    assert {name for name in missing if name not in documented} == set()
