"""Helm charts from HTTP/S chart repositories, republished as OCI charts: the index, the download, the
config blob built from the chart's own metadata exactly as Helm builds it, and the push.
"""
