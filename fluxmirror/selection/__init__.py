"""Tag selection: the regex → semver → sort → limit pipeline with Go-compatible building blocks."""
