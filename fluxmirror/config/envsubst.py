"""`${VAR}` substitution over a whole config file, before it is parsed as YAML.

This reproduces the behaviour of the substitution `flux mirror` runs, fluxcd/pkg's envsubst (a
fork of drone/envsubst) in strict mode, not the shell's: a config gets the same values here as
there (docs/config.md#envsubst). In short, where that implementation and the shell disagree, it wins:

* `${V=d}`, `${V:=d}`, `${V:-d}`, `${V:+d}` and `${V:?d}` all mean "V's value if it is not empty,
  else `d`" (no assignment, no error); `${V-d}`, `${V+d}` and `${V?d}` are parse errors.
* Operands are expanded before the variable is looked at, so `${SET:-${UNSET}}` is an error.
* `/` replacements match literal text; `#` and `%` trims use Go's `path.Match` globs, as patched in
  the fork (`*` and `?` also match `/`), with its shortest-match loop that never tries an empty
  prefix, and its `%` that reverses pattern and value.
* Lengths, offsets and trims count bytes of the UTF-8 text, as Go strings do. A result that is not
  valid UTF-8 (an offset inside a character) fails here; in Go it fails when the YAML is parsed.
* `$$` is a literal `$` outside expressions and in `/` operands (which also take `\\/` and `\\\\`),
  nowhere else.

Where the reference has no defined result we choose one: a negative substring length counts from
the end, as in bash (the reference crashes); every unset variable is reported at once (the
reference names the first); nesting, result sizes and glob work are bounded so that hostile input
ends in one line.
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
# Glob trims test every prefix of the value, each match scanning it again: the reference's cost is
# quadratic in the value's length. Realistic trims take a few thousand steps; past this many the
# expression fails instead of holding the run for minutes.
_MAX_GLOB_STEPS = 5_000_000
# Go's strconv.Atoi: an optional sign and decimal digits, within an int64.
_INT = re.compile(r"[+-]?[0-9]+")
_INT64 = 1 << 63
# Operators that supply a value for an unset variable, exempt from strict mode.
_DEFAULT_OPS = frozenset(("=", ":=", ":-", ":+", ":?"))


class EnvsubstError(ValueError):
    """The text cannot be substituted; `str()` is the whole line the user sees."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"substitute environment variables: {detail}")


@dataclass(frozen=True, slots=True)
class _Expansion:
    """`${name<op>args}`; `op` is "" for `${name}` and "len" for `${#name}`."""

    name: str
    op: str
    args: tuple[_Node, ...] = ()


_Node = bytes | _Expansion


def substitute(text: str, env: Mapping[str, str], *, limit: int | None = None) -> str:
    """Expand every `${…}` in `text` from `env`, in strict mode.

    The whole text is parsed before anything is looked up, so a syntax error is reported even
    when variables are also missing; then every unset variable is collected into one error.
    No string built on the way, the result included, may be longer than `limit` bytes, so a
    few thousand `${BIG_VARIABLE}` cannot fill memory.
    """
    if "$" not in text:
        return text
    nodes = _Parser(text).top()
    evaluator = _Evaluator(env, limit)
    result = evaluator.sequence(nodes)
    evaluator.check()
    try:
        return result.decode()
    except UnicodeDecodeError as exc:
        raise EnvsubstError(
            f"the result is not UTF-8 text (byte {exc.start}): an offset, length or trim cuts a character"
        ) from None


# Which characters an operand's text may hold (the first refused one ends it), and which escapes
# apply inside it.
_Accept = Callable[[str], bool]


def _any(ch: str) -> bool:
    return True


def _not_brace(ch: str) -> bool:
    return ch != "}"


def _not_slash(ch: str) -> bool:
    return ch != "/"


def _not_colon_or_brace(ch: str) -> bool:
    return ch not in ":}"


def _is_name(ch: str) -> bool:
    # Go's unicode.IsLetter (L*), IsDigit (Nd) or `_`.
    return ch == "_" or ch.isalpha() or ch.isdecimal()


class _Parser:
    """Recursive descent over the reference's grammar; positions index characters of the text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def peek(self, offset: int = 0) -> str:
        return self.text[self.pos + offset : self.pos + offset + 1]

    def opens(self) -> bool:
        return self.text.startswith("${", self.pos)

    def top(self) -> list[_Node]:
        nodes: list[_Node] = []
        while self.pos < len(self.text):
            if self.opens():
                self.pos += 2
                nodes.append(self.expansion())
            else:
                nodes.append(self.run(_any, dollar=True, backslash=False))
        return nodes

    def run(self, accept: _Accept, *, dollar: bool, backslash: bool) -> bytes:
        """Read text up to `${`, the end, or a character `accept` refuses; at least one character.

        `$$` (with `dollar`) and `\\/`, `\\\\` (with `backslash`) stand for their second character,
        which is taken whatever `accept` says.
        """
        text = self.text
        pos = self.pos
        out: list[str] = []
        while pos < len(text):
            ch = text[pos]
            nxt = text[pos + 1 : pos + 2]
            if ch == "$" and nxt == "{":
                break
            if (dollar and ch == "$" and nxt == "$") or (backslash and ch == "\\" and nxt in ("/", "\\")):
                out.append(nxt)
                pos += 2
                continue
            if not accept(ch):
                break
            out.append(ch)
            pos += 1
        self.pos = pos
        return "".join(out).encode()

    def operand(self, accept: _Accept, *, escapes: bool = False) -> _Node:
        """One operand token: a nested expansion, or a non-empty run of accepted text."""
        if self.opens():
            self.pos += 2
            return self.expansion()
        start = self.pos
        word = self.run(accept, dollar=escapes, backslash=escapes)
        if self.pos == start:
            raise EnvsubstError(_BAD_ARGUMENT)
        return word

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
        if op == ":":
            return self.colon(name)
        if op == "=":
            self.pos += 1
            return self.default(name, "=")
        if op in (",", "^"):
            # Any two of `,` and `^`; the mixed pairs leave the value as it is.
            self.pos += 1
            if self.peek() in (",", "^"):
                op += self.peek()
                self.pos += 1
            self.close()
            return _Expansion(name, op)
        if op == "/":
            return self.replacement(name)
        if op in ("#", "%"):
            self.pos += 1
            if self.peek() == op:
                self.pos += 1
                op += op
            pattern = self.operand(_not_brace)
            self.close()
            return _Expansion(name, op, (pattern,))
        if op != "}":
            raise EnvsubstError(_MISSING_BRACE)
        self.pos += 1
        return _Expansion(name, "")

    def colon(self, name: str) -> _Expansion:
        following = self.peek(1)
        if following in ("=", "-", "?", "+"):
            self.pos += 2
            return self.default(name, ":" + following)
        if not following or not following.isascii():
            # The reference's scanner steps back by the width of the character after `:`, so any
            # character wider than a byte (or none) leaves it reading garbage.
            raise EnvsubstError(_BAD_SUBSTITUTION)
        self.pos += 1
        offset = self.operand(_not_colon_or_brace)
        if self.peek() == "}":
            self.pos += 1
            return _Expansion(name, ":", (offset,))
        if self.peek() != ":":
            raise EnvsubstError(_BAD_SUBSTITUTION)
        while self.peek() == ":":
            self.pos += 1
        length = self.operand(_not_brace)
        self.close()
        return _Expansion(name, ":", (offset, length))

    def default(self, name: str, op: str) -> _Expansion:
        words: list[_Node] = []
        while self.peek() != "}":
            words.append(self.operand(_not_brace))
        self.pos += 1
        return _Expansion(name, op, tuple(words))

    def replacement(self, name: str) -> _Expansion:
        self.pos += 1
        op = "/"
        if self.peek() in ("/", "#", "%"):
            op += self.peek()
            self.pos += 1
        pattern = self.operand(_not_slash, escapes=True)
        if self.peek() != "/":
            raise EnvsubstError(_BAD_SUBSTITUTION)
        while self.peek() == "/":
            self.pos += 1
        if self.peek() == "}":
            self.pos += 1
            return _Expansion(name, op, (pattern,))
        replacement = self.operand(_not_brace, escapes=True)
        self.close()
        return _Expansion(name, op, (pattern, replacement))

    def name(self) -> str:
        start = self.pos
        text = self.text
        while self.pos < len(text) and _is_name(text[self.pos]):
            self.pos += 1
        return text[start : self.pos]

    def close(self) -> None:
        if self.peek() != "}":
            raise EnvsubstError(_BAD_SUBSTITUTION)
        self.pos += 1


class _Evaluator:
    """Expands parsed nodes, recording unset variables instead of stopping so all are reported."""

    def __init__(self, env: Mapping[str, str], limit: int | None) -> None:
        self.env = env
        self.limit = limit
        self.unset: dict[str, None] = {}
        self.glob_steps = 0

    def sequence(self, nodes: list[_Node] | tuple[_Node, ...]) -> bytes:
        pieces: list[bytes] = []
        size = 0
        for node in nodes:
            piece = node if isinstance(node, bytes) else self.expand(node)
            size += len(piece)
            self.check_size(size)
            pieces.append(piece)
        return b"".join(pieces)

    def check_size(self, size: int) -> None:
        if self.limit is not None and size > self.limit:
            raise EnvsubstError(f"the result is longer than {self.limit} bytes")

    def expand(self, node: _Expansion) -> bytes:
        raw = self.env.get(node.name)
        if raw is None and node.op not in _DEFAULT_OPS:
            self.unset.setdefault(node.name)
        # Operands are expanded whether or not they are used, as in the reference.
        args = [self.sequence((arg,)) for arg in node.args]
        value = b"" if raw is None else _encode(raw)
        result = self.apply(node, value, args)
        self.check_size(len(result))
        return result

    def apply(self, node: _Expansion, value: bytes, args: list[bytes]) -> bytes:
        op = node.op
        if op == "len":
            return str(len(value)).encode()
        if op in ("^", ",", "^^", ",,"):
            return _change_case(value, upper=op[0] == "^", whole=len(op) == 2)
        if op == ":":
            return _substring(value, args)
        if op in ("#", "##", "%", "%%"):
            return self.trim(node, value, args[0])
        if op.startswith("/"):
            return self.replace(op, value, args)
        # Plain `${V}`, the default operators, and the mixed case pairs.
        return value if value or not args else b"".join(args)

    def trim(self, node: _Expansion, value: bytes, pattern: bytes) -> bytes:
        suffix = node.op[0] == "%"
        if suffix:
            value, pattern = _reverse(value), _reverse(pattern)
        budget = _Budget(_MAX_GLOB_STEPS - self.glob_steps)
        try:
            cut = _trim_prefix(value, pattern, shortest=len(node.op) == 1, budget=budget)
        except _TooCostly:
            raise EnvsubstError(
                f"matching the pattern of ${{{node.name}{node.op}…}} against a value of {len(value)} bytes"
                " takes too many steps"
            ) from None
        finally:
            self.glob_steps = _MAX_GLOB_STEPS - budget.left
        return _reverse(cut) if suffix else cut

    def replace(self, op: str, value: bytes, args: list[bytes]) -> bytes:
        old = args[0]
        new = args[1] if len(args) > 1 else b""
        if op in ("/#", "/%"):
            # Without a replacement operand the anchored forms leave the value alone.
            if len(args) < 2:
                return value
            if op == "/#":
                return new + value[len(old) :] if value.startswith(old) else value
            return value[: len(value) - len(old)] + new if value.endswith(old) else value
        count = 1 if op == "/" else -1
        if not old:
            # An empty pattern matches before every character and at the end, as Go's Replace.
            starts = [*_rune_starts(value), len(value)]
            if count == 1:
                starts = starts[:1]
            self.check_size(len(value) + len(starts) * len(new))
            out: list[bytes] = []
            previous = 0
            for start in starts:
                out += (value[previous:start], new)
                previous = start
            out.append(value[previous:])
            return b"".join(out)
        if len(new) > len(old):
            found = value.count(old) if count == -1 else int(old in value)
            self.check_size(len(value) + found * (len(new) - len(old)))
        return value.replace(old, new, count)

    def check(self) -> None:
        names = [f'"{name}"' for name in self.unset]
        if len(names) == 1:
            raise EnvsubstError(f"variable not set (strict mode): {names[0]}")
        if names:
            raise EnvsubstError(f"variables not set (strict mode): {', '.join(names)}")


# --- Go string semantics over UTF-8 bytes -------------------------------------------------------

_REPLACEMENT_CHAR = "\ufffd"


def _encode(value: str) -> bytes:
    """The bytes of an environment value; os.environ keeps undecodable bytes as lone surrogates."""
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")


def _runes(value: bytes) -> list[str]:
    """Decode like Go's `[]rune(s)`: every byte of an invalid sequence becomes U+FFFD on its own."""
    try:
        return list(value.decode())
    except UnicodeDecodeError:
        pass
    out: list[str] = []
    i = 0
    while i < len(value):
        ch, width = _decode_rune(value, i)
        out.append(ch)
        i += width
    return out


# Sequence length by the high nibble of a lead byte from C2 to F4.
_WIDTHS = {0xC: 2, 0xD: 2, 0xE: 3, 0xF: 4}


def _decode_rune(value: bytes, i: int) -> tuple[str, int]:
    """Go's utf8.DecodeRune at `i`: the character and its width, or U+FFFD and 1 when invalid."""
    lead = value[i]
    if lead < 0x80:
        return chr(lead), 1
    width = _WIDTHS.get(lead >> 4, 0) if 0xC2 <= lead < 0xF5 else 0
    if width == 0:
        return _REPLACEMENT_CHAR, 1
    try:
        return value[i : i + width].decode(), width
    except UnicodeDecodeError:
        return _REPLACEMENT_CHAR, 1


def _rune_starts(value: bytes) -> list[int]:
    starts: list[int] = []
    i = 0
    while i < len(value):
        starts.append(i)
        i += _decode_rune(value, i)[1]
    return starts


def _reverse(value: bytes) -> bytes:
    return "".join(reversed(_runes(value))).encode()


# Characters whose full case mapping (what Python applies) has several characters but whose simple
# mapping (what Go's unicode.ToUpper/ToLower apply) is another single character.
_SIMPLE_UPPER = {
    **{chr(c): chr(c + 8) for base in (0x1F80, 0x1F90, 0x1FA0) for c in range(base, base + 8)},
    "\u1fb3": "\u1fbc",
    "\u1fc3": "\u1fcc",
    "\u1ff3": "\u1ffc",
}
_SIMPLE_LOWER = {"\u0130": "i"}


def _simple_case(ch: str, *, upper: bool) -> str:
    mapped = ch.upper() if upper else ch.lower()
    if len(mapped) == 1:
        return mapped
    return (_SIMPLE_UPPER if upper else _SIMPLE_LOWER).get(ch, ch)


def _change_case(value: bytes, *, upper: bool, whole: bool) -> bytes:
    if not value:
        return value
    if whole:
        if value.isascii():
            return value.upper() if upper else value.lower()
        return "".join(_simple_case(ch, upper=upper) for ch in _runes(value)).encode()
    ch, width = _decode_rune(value, 0)
    return _simple_case(ch, upper=upper).encode() + value[width:]


def _to_int(text: bytes) -> int | None:
    if (match := _INT.fullmatch(text.decode("latin-1"))) is None:
        return None
    number = int(match.group())
    return number if -_INT64 <= number < _INT64 else None


def _substring(value: bytes, args: list[bytes]) -> bytes:
    """Byte offsets; an operand that is not an integer leaves the value untouched."""
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
    if length < 0:
        # The reference crashes here; count from the end as bash does.
        return value[offset : max(len(value) + length, 0)]
    return value[offset : offset + length]


# --- Glob trims --------------------------------------------------------------------------------


class _TooCostly(Exception):
    pass


class _BadPattern(Exception):
    pass


class _Budget:
    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left

    def spend(self, steps: int = 1) -> None:
        self.left -= steps
        if self.left < 0:
            raise _TooCostly


def _trim_prefix(value: bytes, pattern: bytes, *, shortest: bool, budget: _Budget) -> bytes:
    """Remove the shortest or longest non-empty prefix that the glob matches.

    As the reference does: prefixes are tried from the longest down; the longest trim stops at the
    first match, the shortest keeps the last one; a malformed pattern met on the way leaves the
    value whole.
    """
    chunks = _chunks(pattern)
    found = 0
    for end in range(len(value), 0, -1):
        try:
            matched = _glob(chunks, value[:end], budget)
        except _BadPattern:
            return value
        if matched:
            if not shortest:
                return value[end:]
            found = end
    return value[found:]


@dataclass(frozen=True, slots=True)
class _Chunk:
    """A run of single-character terms, maybe preceded by a star, and the bytes it can span.

    `sound` chunks can never raise _BadPattern, whatever text they meet.
    """

    star: bool
    terms: bytes
    sound: bool
    shortest: int
    longest: int


def _chunks(pattern: bytes) -> list[_Chunk]:
    """Split a glob at its stars, as the reference scans it.

    A star inside a bracket, or escaped, stays in its chunk; a trailing star yields an empty chunk.
    """
    chunks: list[_Chunk] = []
    while pattern:
        stripped = pattern.lstrip(b"*")
        star = len(stripped) != len(pattern)
        pattern = stripped
        in_class = False
        i = 0
        while i < len(pattern):
            byte = pattern[i]
            if byte == 0x5C:  # backslash
                i += 1 if i + 1 < len(pattern) else 0
            elif byte == 0x5B:  # [
                in_class = True
            elif byte == 0x5D:  # ]
                in_class = False
            elif byte == 0x2A and not in_class:  # *
                break
            i += 1
        chunks.append(_chunk(star, pattern[:i]))
        pattern = pattern[i:]
    return chunks


def _chunk(star: bool, terms: bytes) -> _Chunk:
    """Parse the terms once without text: a literal spans one byte, `?` and a class one character."""
    literals = characters = 0
    i = 0
    try:
        while i < len(terms):
            byte = terms[i]
            if byte == 0x5B:  # [
                i += 1
                i += terms[i : i + 1] == b"^"
                ranges = 0
                while not (terms[i : i + 1] == b"]" and ranges > 0):
                    _, i = _class_char(terms, i)
                    if terms[i] == 0x2D:  # -
                        _, i = _class_char(terms, i + 1)
                    ranges += 1
                characters += 1
            elif byte == 0x3F:  # ?
                characters += 1
            else:
                if byte == 0x5C and i + 1 >= len(terms):
                    raise _BadPattern
                i += byte == 0x5C
                literals += 1
            i += 1
    except _BadPattern:
        return _Chunk(star, terms, sound=False, shortest=0, longest=0)
    return _Chunk(star, terms, sound=True, shortest=literals + characters, longest=literals + 4 * characters)


def _glob(chunks: list[_Chunk], name: bytes, budget: _Budget) -> bool:
    """Whether the whole `name` matches, with the reference's first-fit placement of each chunk."""
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1
        if chunk.star and not chunk.terms:
            return True
        rest = _match_chunk(chunk.terms, name, budget)
        if rest is not None and (not rest or not last):
            name = rest
            continue
        if not chunk.star:
            return False
        skips = range(1, len(name) + 1)
        if last and chunk.sound:
            # Only a match ending exactly at the end counts, and no skip can fail with an error, so
            # only the skips that leave room for the chunk's span need trying.
            skips = range(max(1, len(name) - chunk.longest), len(name) - chunk.shortest + 1)
        for skip in skips:
            rest = _match_chunk(chunk.terms, name[skip:], budget)
            if rest is not None and (not last or not rest):
                name = rest
                break
        else:
            return False
    return not name


def _match_chunk(chunk: bytes, text: bytes, budget: _Budget) -> bytes | None:
    """Match the star-free `chunk` at the start of `text`: what is left of it, or None.

    Raises _BadPattern when a malformed term is reached while there is still text to match.
    """
    budget.spend()
    i = 0
    pos = 0
    while i < len(chunk):
        if pos >= len(text):
            return None
        budget.spend()
        byte = chunk[i]
        if byte == 0x5B:  # [
            ch, width = _decode_rune(text, pos)
            pos += width
            i += 1
            negated = chunk[i : i + 1] == b"^"
            i += negated
            matched = False
            ranges = 0
            while not (chunk[i : i + 1] == b"]" and ranges > 0):
                low, i = _class_char(chunk, i)
                high = low
                if chunk[i] == 0x2D:  # -
                    high, i = _class_char(chunk, i + 1)
                matched = matched or low <= ch <= high
                ranges += 1
            i += 1
            if matched == negated:
                return None
        elif byte == 0x3F:  # ?
            pos += _decode_rune(text, pos)[1]
            i += 1
        else:
            if byte == 0x5C:  # backslash
                i += 1
                if i >= len(chunk):
                    raise _BadPattern
            if chunk[i] != text[pos]:
                return None
            i += 1
            pos += 1
    return text[pos:]


def _class_char(chunk: bytes, i: int) -> tuple[str, int]:
    """A possibly escaped character of a bracket expression, and the index after it."""
    if i >= len(chunk) or chunk[i] in (0x2D, 0x5D):
        raise _BadPattern
    if chunk[i] == 0x5C:
        i += 1
        if i >= len(chunk):
            raise _BadPattern
    ch, width = _decode_rune(chunk, i)
    if ch == _REPLACEMENT_CHAR and width == 1:
        raise _BadPattern
    i += width
    if i >= len(chunk):
        raise _BadPattern
    return ch, i
