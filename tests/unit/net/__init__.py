"""Protocol corner cases of fluxmirror.http, oci and helm fetch, tested in milliseconds without binaries."""
