"""The exception tree: every failure a user can see is a `FluxMirrorError`, whose message is the one
line the CLI prints (`✗ <message>`, exit 1) or a report row's `error`. `temporary` (a constructor
argument) says whether sending the same request again may succeed, and the registry client and
the blob transfer retry only those (a sync job retries any failure, as Go does); `prefixed(context)`
names a failure by its caller's context without changing its class or attributes.

FluxMirrorError                        fluxmirror.errors
├── UsageError                         a flag or argument has a bad value
├── ConfigError                        the config cannot be read, parsed, validated or confined
├── KeygenError                        `keygen` could not write the key pair
├── NotImplementedYetError             a documented command this build does not implement
├── CredentialError                    auth.dockerconfig: the Docker config or a credential helper failed
├── HostCredentialError                auth.hosts: a `hosts[]` credential cannot be read or minted (a
│                                      provider's cause after `failed to obtain CI JWT for host "<h>"`
│                                      or `get <provider> registry credentials for "<h>"`)
├── DockerLoginError                   auth.dockerlogin: `login` cannot write the Docker config
├── KubeError                          kube.client: the Kubernetes API refused or could not be reached
├── NetworkError                       http.errors: an HTTP exchange failed
│   ├── TransportError                 the connection failed (refused, reset, timed out, cut); temporary
│   │   └── TLSError                   the TLS handshake failed (an untrusted certificate); not temporary
│   ├── StatusError                    an unaccepted status (`status`, `url`, `retry_after`); temporary
│   │   │                              when 408, 429, 499, 5xx or 522
│   │   └── RegistryError              oci.errors: with the body's `diagnostics` (code, message, detail);
│   │                                  TOOMANYREQUESTS and UNAVAILABLE make it temporary
│   ├── BodyError                      a body over its cap, or shorter than its Content-Length (temporary)
│   └── RedirectError                  too many redirects, or a redirect to a non-HTTP URL
├── OCIError                           oci.errors: registry content or protocol fluxmirror cannot accept
│   ├── ManifestError                  a manifest cannot be parsed or names an invalid digest
│   ├── DigestMismatchError            content does not hash to its digest; nothing is committed
│   └── UnsupportedDigestError         oci.digests: a digest names an algorithm other than sha256,
│                                      sha512 or blake3
├── LayoutError                        layout.errors: an OCI image layout (directory or tar) is unreadable,
│                                      malformed, truncated, hostile or locked by another writer
├── VolumeTooSmall                     sync.pack: a blob does not fit a volume of `--split-size`
├── ExportInterrupted                  sync.export: a signal arrived while the tar was written; none is left
├── FetchError                         helm.fetch: a chart cannot be used (not in the index, wrong digest)
├── ChartError                         helm.chart: a chart archive or its Chart.yaml is invalid
├── PlanError                          sync.plan: an entry cannot be planned; fails that entry only
└── MetricsError                       the run's metrics could not be written (--metrics-file) or pushed
                                       (--pushgateway); a warning line, never a change of exit code

Internal signals, never shown as such: parse errors raised by pure parsers and turned into one of the
above by their caller (`EnvsubstError`, `InvalidReferenceError`, `JWKError`, `HelperMissingError`,
`ArchiveError`, `IndexParseError`, `HeaderError` (layout.ustar), `DecodeError`, `GoRegexError`,
`InvalidVersionError`, `InvalidConstraintError`, `TLSSettingsError`, `NearExpiryError`, all
`ValueError`s or `LookupError`s),
`ProviderError` (auth.providers: why an identity could not mint, wrapped by auth.hosts), the signature
checks of `fluxmirror.cosign` (`SignatureError` and its `MalformedSignature`, `StatementError`,
`LegacyError`, `TrustRootError`) and sync.verify's `VerifyFailure`, which become a tag row's
`verify <source>:<tag>: …` error or the entry's `fetch trusted root: …`, the sync engine's
`JobFailure` and `ReferrerFailure`, which carry a `FluxMirrorError` with the row's partial results,
and `SpiffeAuthError` (http.spiffe), an `ssl.SSLCertVerificationError` raised inside a TLS
handshake whose server's SPIFFE ID is refused, which becomes a `TLSError`.

An exception outside this tree is a defect: the engine fails only the entry or job it happened in,
and `cli.app.main` ends the process with one line built by `unexpected` (never a traceback).
Messages never carry secrets: URLs are redacted where they are built and server-supplied text is
scrubbed (`fluxmirror.scrub`) before it is quoted.
"""

from __future__ import annotations

from typing import Self

__all__ = [
    "ConfigError",
    "FluxMirrorError",
    "KeygenError",
    "MetricsError",
    "NotImplementedYetError",
    "UsageError",
    "unexpected",
]


class FluxMirrorError(Exception):
    """An error the user can act on, worded as the single line the CLI prints.

    `temporary` says whether sending the same request again may succeed; request-level retries
    are limited to those, while a sync job retries any failure (docs/sync.md#job-retries)."""

    exit_code: int = 1

    def __init__(self, message: str, *, temporary: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.temporary = temporary

    def prefixed(self, context: str) -> Self:
        """The same failure, of the same class and with the same attributes (status, retry
        advice), named by its caller's context: `<context>: <error>`."""
        wrapped = type(self).__new__(type(self))
        wrapped.__dict__.update(self.__dict__)
        wrapped.message = f"{context}: {self.message}"
        wrapped.args = (wrapped.message,)
        return wrapped

    def __str__(self) -> str:
        return self.message


class UsageError(FluxMirrorError):
    """A command-line flag or argument is invalid."""


class ConfigError(FluxMirrorError):
    """The config failed to load: open, substitute, parse, validate or confine."""


class KeygenError(FluxMirrorError):
    """The key pair could not be written."""


class MetricsError(FluxMirrorError):
    """The run's metrics did not reach their file or Pushgateway. The CLI prints it as a warning: the
    run did its work, and its exit code says how that went (docs/metrics.md#failures)."""


class NotImplementedYetError(FluxMirrorError):
    """A documented command that this build does not implement yet."""

    def __init__(self, command: str) -> None:
        super().__init__(f"{command}: not implemented yet in fluxmirror")


def unexpected(exc: BaseException) -> str:
    """One line for an exception no layer anticipated (a defect): its type and message, so a user can
    report it, without a traceback and with control characters escaped."""
    text = " ".join(str(exc).split())
    line = f"internal error: {type(exc).__name__}: {text}" if text else f"internal error: {type(exc).__name__}"
    return line.encode("unicode_escape").decode("ascii") if not line.isprintable() else line
