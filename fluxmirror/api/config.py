"""The `mirror.plugin.fluxcd.io/v1beta1` Config document as msgspec structs.

Types stay loose on purpose (strings rather than enums, ints without bounds): decoding only rejects
unknown fields and wrong JSON types, so that every semantic rule is reported by `config.validate`
with the exact message `flux mirror` users know. The bounds appear in the generated JSON Schema
through `extra_json_schema`.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec

from fluxmirror.api.duration import Duration

__all__ = [
    "API_VERSION",
    "KIND",
    "SORT_STRATEGIES",
    "TLS",
    "Artifact",
    "Chart",
    "ClientAuth",
    "Config",
    "Credential",
    "Host",
    "OIDCIdentity",
    "PEMSource",
    "RegexFilter",
    "Selector",
    "ServerAuth",
    "Spiffe",
    "Verify",
]

API_VERSION: Final = "mirror.plugin.fluxcd.io/v1beta1"
KIND: Final = "Config"
SORT_STRATEGIES: Final = ("semver", "alphabetical", "numerical")
"""The allowed `selector.sortBy` values; an empty one means the first, `semver`."""


def _doc(text: str, **schema: Any) -> msgspec.Meta:
    return msgspec.Meta(description=text, extra_json_schema=schema or None)


class _Struct(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True, frozen=True):
    """Common struct options: strict keys, compact encoding, immutable once loaded."""


class RegexFilter(_Struct, frozen=True):
    pattern: Annotated[str, _doc("Go regular expression searched in each tag; non-matching tags are dropped.")]
    extract: Annotated[
        str, _doc("Replacement template over named groups ($name, ${name}) giving the comparison key.")
    ] = ""


class Selector(_Struct, frozen=True):
    regex: RegexFilter | None = None
    semver: Annotated[str, _doc("Masterminds semver range the comparison key must satisfy.")] = ""
    sortBy: Annotated[str, _doc("Sort strategy, highest first.", enum=list(SORT_STRATEGIES))] = SORT_STRATEGIES[0]
    limit: Annotated[int, _doc("How many tags to keep from the top; 0 keeps all.", minimum=0)] = 1


class OIDCIdentity(_Struct, frozen=True):
    issuer: Annotated[str, _doc("OIDC issuer URL, matched exactly.")] = ""
    subject: Annotated[str, _doc("Go regular expression matched against the certificate SAN.")] = ""


class Verify(_Struct, frozen=True):
    provider: Annotated[str, _doc("Verification provider.", enum=["cosign"])] = ""
    matchOIDCIdentity: list[OIDCIdentity] = []
    minAge: Annotated[Duration | None, _doc("Minimum signature age (Go duration).")] = None


class Artifact(_Struct, frozen=True):
    source: Annotated[str, _doc("OCI repository to pull from, without scheme.")]
    destination: Annotated[str, _doc("OCI repository to push to, without scheme.")]
    selector: Selector | None = None
    includeReferrers: Annotated[bool, _doc("Also mirror signatures, SBOMs and attestations.")] = False
    verify: Verify | None = None
    overwrite: Annotated[bool, _doc("Replace destination tags whose digest differs.")] = False


class Chart(_Struct, frozen=True):
    name: Annotated[str, _doc("Chart name in the repository index.")] = ""
    source: Annotated[str, _doc("HTTP/S Helm repository URL.")] = ""
    destination: Annotated[str, _doc("oci:// repository prefix the chart is published under.")] = ""
    version: Annotated[str, _doc("Masterminds semver range of versions to mirror.")] = "*"
    limit: Annotated[int, _doc("How many versions to keep from the top; 0 keeps all.", minimum=0)] = 1
    overwrite: Annotated[bool, _doc("Replace destination versions whose chart digest differs.")] = False


class Credential(_Struct, frozen=True):
    provider: Annotated[
        str,
        _doc(
            "Mint the token from an ambient identity.",
            enum=["github", "forgejo", "gcp", "azure", "aws", "jwt-svid"],
        ),
    ] = ""
    value: Annotated[str, _doc("Token sent as-is.")] = ""
    fromPath: Annotated[str, _doc("File holding the token, re-read on every request.")] = ""
    jwkPath: Annotated[str, _doc("File holding a private JWK that signs a JWT per request.")] = ""
    jwkValue: Annotated[str, _doc("Inline private JWK that signs a JWT per request.")] = ""
    iss: Annotated[str, _doc("JWT issuer claim (jwkPath/jwkValue).")] = ""
    sub: Annotated[str, _doc("JWT subject claim (jwkPath/jwkValue).")] = ""
    aud: Annotated[str, _doc("Audience; defaults to the host.")] = ""
    exp: Annotated[Duration | None, _doc("Signed JWT lifetime (Go duration); defaults to 60s.")] = None


class PEMSource(_Struct, frozen=True):
    fromPath: Annotated[str, _doc("PEM file path, relative to the config directory.")] = ""
    value: Annotated[str, _doc("Inline PEM.")] = ""


class Spiffe(_Struct, frozen=True):
    serverID: Annotated[str, _doc("Exact SPIFFE ID the server must present.")] = ""
    trustDomain: Annotated[str, _doc("Trust domain the server SVID must belong to, or `self`.")] = ""
    authorizeAny: Annotated[bool, _doc("Accept any SVID the bundle validates.")] = False


class ServerAuth(_Struct, frozen=True):
    fromPath: Annotated[str, _doc("CA bundle file replacing the system roots.")] = ""
    value: Annotated[str, _doc("Inline CA bundle replacing the system roots.")] = ""
    spiffe: Spiffe | None = None


class ClientAuth(_Struct, frozen=True):
    provider: Annotated[str, _doc("Client certificate provider.", enum=["x509-svid"])] = ""
    certificate: PEMSource | None = None
    key: PEMSource | None = None


class TLS(_Struct, frozen=True):
    serverAuth: ServerAuth | None = None
    clientAuth: ClientAuth | None = None


class Host(_Struct, frozen=True):
    host: Annotated[str, _doc("Registry host[:port] the entry applies to.")] = ""
    username: Annotated[str, _doc("Send the credential as the password of this user.")] = ""
    credential: Credential | None = None
    provider: Annotated[str, _doc("Cloud registry provider.", enum=["ecr", "acr", "gar"])] = ""
    tls: TLS | None = None
    maxChunkSize: Annotated[int, _doc("Largest blob-upload PATCH in KiB; 0 disables chunking.", minimum=0)] = 0


class Config(_Struct, frozen=True):
    apiVersion: Annotated[str, _doc("Config API version.", const=API_VERSION)]
    kind: Annotated[str, _doc("Config kind.", const=KIND)]
    artifacts: list[Artifact] = []
    charts: list[Chart] = []
    hosts: list[Host] = []
