"""`${VAR}` substitution over a whole config file, before it is parsed as YAML.

The grammar and error texts follow fluxcd/pkg/envsubst in strict mode, so a config that loads
under `flux mirror` loads here with the same result. Where that implementation departs from the
shell (empty-vs-unset for `-` and `=`, `+` and `?`, eagerly expanded defaults, glob patterns in
`/`) we follow the shell, because the docs promise shell syntax. Every unset variable is reported
at once so that one run tells the user everything their environment is missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["EnvsubstError", "substitute"]

_BAD_SUBSTITUTION = "bad substitution"
_MISSING_BRACE = "missing closing brace"
_BAD_NAME = "unable to parse variable name"
_BAD_ARGUMENT = "unable to parse substitution within function"
# Each level costs a few Python frames in the parser and the evaluator; this bound keeps hostile
# input far from the interpreter's recursion limit, and no real config nests this deep.
_MAX_DEPTH = 100

# The tokens that interrupt a word: `${` (nested expansion), `$$` (a literal `$`), the word's
# terminators and, in replace operands, `\/` and `\\`. A lone `$` (as in `$ts`) is plain text.
_TOP = re.compile(r"\$[{$]")
_UNTIL_BRACE = re.compile(r"\$[{$]|\}")
_UNTIL_COLON = re.compile(r"\$[{$]|[:}]")
_PATTERN = re.compile(r"\$[{$]|\\[/\\]|[/}]")
_REPLACEMENT = re.compile(r"\$[{$]|\\[/\\]|\}")
_NAME = re.compile(r"\w*")
_UNESCAPE = re.compile(r"\\([/\\])")
# Go's strconv.Atoi, which the reference uses, accepts at most an int64.
_INT = re.compile(r"[+-]?[0-9]{1,19}")
_INT64 = 1 << 63
_DEFAULT_OPS = ("-", "=", "+", "?", ":-", ":=", ":+", ":?")


class EnvsubstError(ValueError):
    """The text cannot be substituted; `str()` is the whole line the user sees."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"substitute environment variables: {detail}")


@dataclass(frozen=True, slots=True)
class _Expansion:
    name: str
    op: str
    args: tuple[tuple[str | _Expansion, ...], ...] = ()


_Word = tuple[str | _Expansion, ...]


def substitute(text: str, env: Mapping[str, str], *, limit: int | None = None) -> str:
    """Expand every `${…}` in `text` from `env`, in strict mode.

    The whole text is parsed before anything is looked up, so a syntax error is reported even
    when variables are also missing; then every unset variable is collected into one error.
    No string built on the way, the result included, may be longer than `limit` characters, so a
    few thousand `${BIG_VARIABLE}` cannot fill memory.
    """
    if "$" not in text:
        return text
    parts = _Parser(text).word(_TOP)
    evaluator = _Evaluator(env, limit)
    result = evaluator.word(parts)
    evaluator.check()
    return result


class _Parser:
    """Recursive descent over the text; positions are indexes so that scanning stays linear."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def word(self, stops: re.Pattern[str]) -> _Word:
        """Read text and nested expansions up to a terminator in `stops`, left unconsumed."""
        parts: list[str | _Expansion] = []
        text = self.text
        while (match := stops.search(text, self.pos)) is not None:
            if match.start() > self.pos:
                parts.append(text[self.pos : match.start()])
            piece = match.group()
            if len(piece) == 1:
                self.pos = match.start()
                return tuple(parts)
            self.pos = match.end()
            if piece == "${":
                parts.append(self.expansion())
            else:
                # `\/` and `\\` stay raw: glob matching unescapes patterns, and replacements are
                # unescaped once parsed.
                parts.append("$" if piece == "$$" else piece)
        if self.pos < len(text):
            parts.append(text[self.pos :])
            self.pos = len(text)
        return tuple(parts)

    def expansion(self) -> _Expansion:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise EnvsubstError(f"expressions nested deeper than {_MAX_DEPTH} levels")
        node = self._expansion()
        self.depth -= 1
        return node

    def _expansion(self) -> _Expansion:
        if self.peek() == "#":
            self.pos += 1
            name = self.name()
            if not name:
                raise EnvsubstError(_BAD_SUBSTITUTION)
            self.close()
            return _Expansion(name, "len")
        name = self.name()
        if not name:
            raise EnvsubstError(_BAD_NAME)
        op = self.peek()
        if op == "}":
            self.pos += 1
            return _Expansion(name, "")
        if op == ":" and self.text[self.pos + 1 : self.pos + 2] in ("-", "=", "+", "?"):
            op = self.text[self.pos : self.pos + 2]
        if op in _DEFAULT_OPS:
            self.pos += len(op)
            return _Expansion(name, op, (self.argument(_UNTIL_BRACE, optional=True),))
        if op == ":":
            self.pos += 1
            offset = self.argument(_UNTIL_COLON, closes=False)
            self.pos += 1
            if self.text[self.pos - 1] == "}":
                return _Expansion(name, op, (offset,))
            return _Expansion(name, op, (offset, self.argument(_UNTIL_BRACE)))
        if op in ("^", ",", "#", "%"):
            self.pos += 1
            if self.peek() == op:
                self.pos += 1
                op += op
            if op[0] in "^,":
                self.close()
                return _Expansion(name, op)
            return _Expansion(name, op, (self.argument(_UNTIL_BRACE),))
        if op == "/":
            return self.replacement(name)
        raise EnvsubstError(_MISSING_BRACE)

    def replacement(self, name: str) -> _Expansion:
        self.pos += 1
        op = "/"
        if self.peek() in ("/", "#", "%"):
            op += self.peek()
            self.pos += 1
        pattern = self.word(_PATTERN)
        if self.peek() == "}":
            # `${V/pat}` deletes the match, as in the shell.
            self.pos += 1
            return _Expansion(name, op, (pattern,))
        if not self.peek():
            raise EnvsubstError(_BAD_SUBSTITUTION if pattern else _BAD_ARGUMENT)
        self.pos += 1
        raw = self.word(_REPLACEMENT)
        if not self.peek():
            raise EnvsubstError(_BAD_SUBSTITUTION if raw else _BAD_ARGUMENT)
        self.pos += 1
        unescaped = tuple(_UNESCAPE.sub(r"\1", p) if isinstance(p, str) else p for p in raw)
        return _Expansion(name, op, (pattern, unescaped))

    def argument(self, stops: re.Pattern[str], *, optional: bool = False, closes: bool = True) -> _Word:
        """Read an operand, failing with the reference's message when it is empty or unterminated."""
        word = self.word(stops)
        if not word and not optional:
            raise EnvsubstError(_BAD_ARGUMENT)
        if not self.peek():
            raise EnvsubstError(_BAD_ARGUMENT if optional else _BAD_SUBSTITUTION)
        if closes:
            self.close()
        return word

    def name(self) -> str:
        # The reference accepts Go's unicode.IsLetter, IsDigit (decimal digits only) and `_`, even
        # as the first character; `\w` is a superset, so cut it at the first other character.
        match = _NAME.match(self.text, self.pos)
        name = match.group() if match else ""
        if not name.isascii():
            valid = (ch.isalpha() or ch.isdecimal() or ch == "_" for ch in name)
            name = name[: next((i for i, ok in enumerate(valid) if not ok), len(name))]
        self.pos += len(name)
        return name

    def close(self) -> None:
        if self.peek() != "}":
            raise EnvsubstError(_BAD_SUBSTITUTION)
        self.pos += 1


class _Evaluator:
    """Expands parsed words, recording failures instead of stopping so all are reported."""

    def __init__(self, env: Mapping[str, str], limit: int | None) -> None:
        self.env = env
        self.limit = limit
        self.unset: dict[str, None] = {}
        self.failure: str | None = None

    def word(self, parts: _Word) -> str:
        pieces: list[str] = []
        size = 0
        for part in parts:
            piece = part if isinstance(part, str) else self.expand(part)
            size += len(piece)
            self.check_size(size)
            pieces.append(piece)
        return "".join(pieces)

    def check_size(self, size: int) -> None:
        if self.limit is not None and size > self.limit:
            raise EnvsubstError(f"the result is longer than {self.limit} characters")

    def expand(self, node: _Expansion) -> str:
        value = self.env.get(node.name)
        op = node.op
        if op in _DEFAULT_OPS:
            if value is None or (op[0] == ":" and not value):
                return self.fallback(node)
            return self.word(node.args[0]) if op[-1] == "+" else value
        if value is None:
            self.unset.setdefault(node.name)
            value = ""
        args = [self.word(arg) for arg in node.args]
        return _apply(op, value, args, self.check_size)

    def fallback(self, node: _Expansion) -> str:
        # Operands are expanded lazily, as in the shell: a default is only needed (and only then
        # are its own variables required) when the variable is unset, or also empty with `:`.
        if node.op[-1] == "+":
            return ""
        word = self.word(node.args[0])
        if node.op[-1] != "?":
            return word
        if self.failure is None:
            default = "parameter null or not set" if node.op == ":?" else "parameter not set"
            self.failure = f"{node.name}: {' '.join((word or default).splitlines())}"
        return ""

    def check(self) -> None:
        names = [f'"{name}"' for name in self.unset]
        if len(names) == 1:
            raise EnvsubstError(f"variable not set (strict mode): {names[0]}")
        if names:
            raise EnvsubstError(f"variables not set (strict mode): {', '.join(names)}")
        if self.failure is not None:
            raise EnvsubstError(self.failure)


def _apply(op: str, value: str, args: list[str], check_size: Callable[[int], None]) -> str:
    if op == "":
        return value
    if op == "len":
        return str(len(value))
    if op in ("^", ","):
        return (value[:1].upper() if op == "^" else value[:1].lower()) + value[1:]
    if op in ("^^", ",,"):
        return value.upper() if op == "^^" else value.lower()
    if op == ":":
        return _substring(value, args)
    if op[0] in "#%":
        suffix = op[0] == "%"
        found = _match(_atoms(args[0], reverse=suffix), value[::-1] if suffix else value, shortest=len(op) == 1)
        cut = found[1] if found else 0
        return value[: len(value) - cut] if suffix else value[cut:]
    return _replace(op, value, args[0], args[1] if len(args) > 1 else "", check_size)


def _substring(value: str, args: list[str]) -> str:
    """Bash offsets over characters; operands that are not integers leave the value untouched."""
    offset = _to_int(args[0])
    if offset is None:
        return value
    if offset < 0:
        offset = max(len(value) + offset, 0)
    if len(args) == 1:
        return value[offset:]
    length = _to_int(args[1])
    if length is None:
        return value
    end = max(len(value) + length, 0) if length < 0 else offset + length
    return value[offset:end]


def _to_int(text: str) -> int | None:
    # Surrounding blanks are allowed so that the shell idiom `${V: -3}` works.
    if (match := _INT.fullmatch(text.strip(" \t"))) is None:
        return None
    number = int(match.group())
    return number if -_INT64 <= number < _INT64 else None


def _replace(op: str, value: str, pattern: str, replacement: str, check_size: Callable[[int], None]) -> str:
    """Leftmost-longest glob replacement; an empty pattern matches only at the anchor of `/#`/`/%`."""
    if op in ("/#", "/%"):
        suffix = op == "/%"
        if (found := _match(_atoms(pattern, reverse=suffix), value[::-1] if suffix else value)) is None:
            return value
        cut = found[1]
        return value[: len(value) - cut] + replacement if suffix else replacement + value[cut:]
    atoms = _atoms(pattern)
    out: list[str] = []
    pos = 0
    size = len(value)
    while (found := _match(atoms, value, start=pos, anchored=False)) is not None and found[1] > found[0]:
        out += (value[pos : found[0]], replacement)
        size += len(replacement) - (found[1] - found[0])
        check_size(size)
        pos = found[1]
        if op == "/":
            break
    out.append(value[pos:])
    return "".join(out)


def _match(
    atoms: list[re.Pattern[str] | None],
    value: str,
    *,
    start: int = 0,
    anchored: bool = True,
    shortest: bool = False,
) -> tuple[int, int] | None:
    """Find the leftmost, then longest (or shortest) span of `value` matching the glob `atoms`.

    A breadth-first simulation of the pattern's automaton, keeping per state only the earliest
    start that reaches it: time is bounded by value length x pattern length, where translating
    the glob to a backtracking regex goes exponential on patterns like `*a*a*a*b`.
    """
    final = len(atoms)
    states: dict[int, int] = {}
    best: tuple[int, int] | None = None
    for i in range(start, len(value) + 1):
        if best is None and (i == start or not anchored):
            _enter(atoms, states, 0, i)
        if final in states and (best is None or states[final] <= best[0]):
            best = (states[final], i)
            if shortest:
                return best
            states = {state: origin for state, origin in states.items() if origin <= best[0]}
        if i == len(value) or not states:
            break
        following: dict[int, int] = {}
        for state, origin in states.items():
            if state == final:
                continue
            atom = atoms[state]
            if atom is None:
                _enter(atoms, following, state, origin)
            elif atom.match(value[i]):
                _enter(atoms, following, state + 1, origin)
        states = following
    return best


def _enter(atoms: list[re.Pattern[str] | None], states: dict[int, int], state: int, origin: int) -> None:
    """Add `state`, and those after it reachable through stars matching nothing."""
    while states.get(state, origin + 1) > origin:
        states[state] = origin
        if state == len(atoms) or atoms[state] is not None:
            return
        state += 1


def _atoms(pattern: str, *, reverse: bool = False) -> list[re.Pattern[str] | None]:
    """Translate a shell glob into one-character matchers, None standing for `*`.

    `*` and `?` also match `/`, as in the reference's matcher. Reversed atoms match reversed
    text, which turns every suffix search into a prefix search.
    """
    atoms: list[re.Pattern[str] | None] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            if not atoms or atoms[-1] is not None:
                atoms.append(None)
            continue
        if ch == "?":
            regex = "."
        elif ch == "\\" and i < len(pattern):
            regex = re.escape(pattern[i])
            i += 1
        elif ch == "[" and (bracket := _bracket(pattern, i)) is not None:
            regex, i = bracket
        else:
            regex = re.escape(ch)
        atoms.append(re.compile(regex, re.DOTALL))
    if reverse:
        atoms.reverse()
    return atoms


def _bracket(pattern: str, start: int) -> tuple[str, int] | None:
    """Translate `[...]` opening at `start`; None when it never closes, so `[` is then literal."""
    negate = pattern[start : start + 1] in ("!", "^")
    i = start + negate
    items: list[str] = []
    first = True
    while i < len(pattern) and (pattern[i] != "]" or first):
        first = False
        low, i = _class_char(pattern, i)
        if pattern[i : i + 1] == "-" and pattern[i + 1 : i + 2] not in ("", "]"):
            high, i = _class_char(pattern, i + 1)
            # An inverted range matches nothing in the shell, rather than being an error.
            if low <= high:
                items.append(f"{re.escape(low)}-{re.escape(high)}")
        else:
            items.append(re.escape(low))
    if i >= len(pattern):
        return None
    if not items:
        return ("." if negate else "(?!)"), i + 1
    return f"[{'^' if negate else ''}{''.join(items)}]", i + 1


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    if pattern[i] == "\\" and i + 1 < len(pattern):
        return pattern[i + 1], i + 2
    return pattern[i], i + 1
