"""`make bench`: fluxmirror's benchmarks, reported as ratios against a floor or a peer tool."""
