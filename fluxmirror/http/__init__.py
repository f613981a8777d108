"""HTTP for every kind of traffic: one session per run, one redirect and credential policy, proxies
from the environment, whole-body reads, and one exception mapping.

Modules: `session` (HttpSession: pool, timeouts, proxies, per-hop TLS and Authorization,
redirects, exception mapping), `body` (bodies read whole or capped), `proxy` (Go's
ProxyFromEnvironment rules), `urls` (Origin, TLS keys, redaction), `status` (transient and
redirect statuses, Retry-After), `errors` (NetworkError and its subclasses), `observer` (the
seam through which the run's traffic is counted, for metrics).

Callers above this layer (`oci`, `helm`) decide what their requests mean: which statuses they
accept, how they word a failure, and which credential goes to which origin.
"""
