"""Go's `regexp` package: RE2 syntax and semantics, run by the RE2 library itself (`google-re2`).

Selector patterns (`.selector.regex`) and OIDC subjects are written for Go, whose `regexp` is RE2:
matching takes time linear in the text, `$` matches only at the end of the text, `\\d \\s \\w \\b` are
ASCII-only, alternation is leftmost-first, and lookarounds and backreferences do not exist. Python's
`re` backtracks (`^(\\d+)+$` against a long tag can run for minutes) and reads the same pattern
differently, so patterns run in RE2. RE2's C++ parser and Go's are ports of one design and agree on
nearly everything; this package closes the gaps before RE2 sees a pattern, so that every pattern Go
accepts runs and every pattern Go rejects fails with the text Go prints (`error parsing regexp: …`):

- `\\C` (any byte) outside a class: RE2 accepts it, Go does not.
- Named groups: Go reads `(?P<` and `(?<` as the start of a name up to the next `>` and takes only
  ASCII letters, digits and `_`, so lookbehinds (`(?<=`, `(?<!`) fail as invalid named captures
  and Unicode names are refused; RE2 words the former differently and accepts the latter.
- `\\p{…}`: Go (1.25 on) looks names up ignoring case, `_`, `-` and spaces, and knows `Any`,
  `ASCII`, `Assigned`, `Cn`, `LC` and the long category aliases (`Letter`, `Decimal_Number`, …);
  RE2 knows only the exact category and script names, so the others are rewritten into classes
  RE2 knows. A name Go does not know is refused even where RE2 would take it.
- Nesting deeper than 1000 levels: Go refuses (`expression nests too deeply`), RE2 does not.
- Size: RE2 compiles a class such as `\\pL` to a UTF-8 automaton, Go to one instruction, so RE2
  runs with a 64 MiB program budget (`\\pL{1000}` fits); a pattern over it fails with Go's
  `expression too large` text, a few patterns earlier than Go would.
- A lone surrogate in a pattern (the only way a Python string carries invalid UTF-8) fails with
  Go's `invalid UTF-8`.
- RE2's error codes are reworded as Go's (`missing )` → `missing closing )`).

Text given to `search` may hold lone surrogates (undecodable bytes under `surrogateescape`, or
`\\udXXX` escapes from JSON). RE2 only takes UTF-8, so each surrogate is matched as U+FFFD, which is
how Go's regexp reads an invalid byte (one `RuneError` per byte); spans and groups still index and
slice the original string. Nothing raises for any text.

When a pattern holds both a Go-only error and one RE2 reports, Go's left-to-right order decides
which is reported. Known gaps: Unicode tables are RE2's (a newer Unicode version than Go's), and
`Cn`, `Assigned` and a negated `LC` inside a bracket class use Python's `unicodedata` tables.

Modules: `_syntax` (the pre-pass: Go's tokenisation, group names, nesting height, Go-only errors),
`_unicode_classes` (Go's `\\p` names and the RE2 text for each), `_errors` (Go's error texts and
RE2's reworded), `_engine` (compiling with RE2, `Regexp` and `Match`), `_expand` (`Expand`).
"""

from fluxmirror.gocompat.regexp._engine import Match, Regexp, compile_go
from fluxmirror.gocompat.regexp._errors import GoRegexError
from fluxmirror.gocompat.regexp._expand import expand

__all__ = ["GoRegexError", "Match", "Regexp", "compile_go", "expand"]
