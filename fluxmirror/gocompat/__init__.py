"""Go behaviour that `flux mirror`'s users see, reproduced: one module per Go package it comes from.

fluxmirror is a drop-in for a Go program, so wherever Go's libraries decide bytes, error texts or
selection results, these modules decide them the same way. The package is a leaf: it imports nothing
else of fluxmirror, and every layer may import it.

- `encoding_json`: `json.Marshal` output (HTML-safe escaping, float64 text).
- `fmt`: `%v` of a decoded JSON value, as registry error details are printed.
- `oserror`: Go's `*fs.PathError` wording for OS errors.
- `regexp` (a package): Go's `regexp` (RE2) on the RE2 library, with Go's syntax gaps closed and
  Go's error texts, plus `Regexp.Expand` templates; its private modules hold the Unicode class
  names, the syntax pre-pass, the error texts, compiling and matching, and `Expand`.
- `semver`: Masterminds/semver v3 versions and range constraints.
- `strconv`: `Quote`, `ParseFloat`/`ParseInt`/`ParseUint` and shortest float formatting.
- `structs`: Go struct decoding and encoding as Helm's chart metadata goes through
  sigs.k8s.io/yaml and `encoding/json`.
- `yaml_v2`: go-yaml v2, reading (plain scalar resolution, first document) and the string quoting
  of its writer.
"""
