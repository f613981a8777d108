"""Go's `\\p{…}` class names and the RE2 text each stands for.

Go (1.25 on) looks a name up ignoring case, `_`, `-` and spaces, and knows names RE2 does not:
`Any`, `ASCII`, `Assigned`, `Cn`, `LC` and Unicode's long category aliases. These tables give each
name Go knows the name RE2 knows, and spell out as classes the four RE2 has no name for. The lists
are Go's (its categories and the scripts of its Unicode tables), so a name Go refuses is refused.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Final

__all__ = ["canonical", "class_names", "special_class"]

_MAX_RUNE: Final = 0x10FFFF
_CATEGORIES: Final = [
    "C",
    "Cc",
    "Cf",
    "Co",
    "Cs",
    "L",
    "Ll",
    "Lm",
    "Lo",
    "Lt",
    "Lu",
    "M",
    "Mc",
    "Me",
    "Mn",
    "N",
    "Nd",
    "Nl",
    "No",
    "P",
    "Pc",
    "Pd",
    "Pe",
    "Pf",
    "Pi",
    "Po",
    "Ps",
    "S",
    "Sc",
    "Sk",
    "Sm",
    "So",
    "Z",
    "Zl",
    "Zp",
    "Zs",
]
# Unicode's long names (PropertyValueAliases, General_Category) for the categories, as Go 1.25 has them.
_CATEGORY_ALIASES: Final = {
    "Other": "C",
    "Control": "Cc",
    "cntrl": "Cc",
    "Format": "Cf",
    "Unassigned": "Cn",
    "Private_Use": "Co",
    "Surrogate": "Cs",
    "Letter": "L",
    "Cased_Letter": "LC",
    "Lowercase_Letter": "Ll",
    "Modifier_Letter": "Lm",
    "Other_Letter": "Lo",
    "Titlecase_Letter": "Lt",
    "Uppercase_Letter": "Lu",
    "Mark": "M",
    "Combining_Mark": "M",
    "Spacing_Mark": "Mc",
    "Enclosing_Mark": "Me",
    "Nonspacing_Mark": "Mn",
    "Number": "N",
    "Decimal_Number": "Nd",
    "digit": "Nd",
    "Letter_Number": "Nl",
    "Other_Number": "No",
    "Punctuation": "P",
    "punct": "P",
    "Connector_Punctuation": "Pc",
    "Dash_Punctuation": "Pd",
    "Close_Punctuation": "Pe",
    "Final_Punctuation": "Pf",
    "Initial_Punctuation": "Pi",
    "Other_Punctuation": "Po",
    "Open_Punctuation": "Ps",
    "Symbol": "S",
    "Currency_Symbol": "Sc",
    "Modifier_Symbol": "Sk",
    "Math_Symbol": "Sm",
    "Other_Symbol": "So",
    "Separator": "Z",
    "Line_Separator": "Zl",
    "Paragraph_Separator": "Zp",
    "Space_Separator": "Zs",
}
# The scripts of Go's unicode tables (Unicode 15.0.0).
_SCRIPTS: Final = [
    "Adlam",
    "Ahom",
    "Anatolian_Hieroglyphs",
    "Arabic",
    "Armenian",
    "Avestan",
    "Balinese",
    "Bamum",
    "Bassa_Vah",
    "Batak",
    "Bengali",
    "Bhaiksuki",
    "Bopomofo",
    "Brahmi",
    "Braille",
    "Buginese",
    "Buhid",
    "Canadian_Aboriginal",
    "Carian",
    "Caucasian_Albanian",
    "Chakma",
    "Cham",
    "Cherokee",
    "Chorasmian",
    "Common",
    "Coptic",
    "Cuneiform",
    "Cypriot",
    "Cypro_Minoan",
    "Cyrillic",
    "Deseret",
    "Devanagari",
    "Dives_Akuru",
    "Dogra",
    "Duployan",
    "Egyptian_Hieroglyphs",
    "Elbasan",
    "Elymaic",
    "Ethiopic",
    "Georgian",
    "Glagolitic",
    "Gothic",
    "Grantha",
    "Greek",
    "Gujarati",
    "Gunjala_Gondi",
    "Gurmukhi",
    "Han",
    "Hangul",
    "Hanifi_Rohingya",
    "Hanunoo",
    "Hatran",
    "Hebrew",
    "Hiragana",
    "Imperial_Aramaic",
    "Inherited",
    "Inscriptional_Pahlavi",
    "Inscriptional_Parthian",
    "Javanese",
    "Kaithi",
    "Kannada",
    "Katakana",
    "Kawi",
    "Kayah_Li",
    "Kharoshthi",
    "Khitan_Small_Script",
    "Khmer",
    "Khojki",
    "Khudawadi",
    "Lao",
    "Latin",
    "Lepcha",
    "Limbu",
    "Linear_A",
    "Linear_B",
    "Lisu",
    "Lycian",
    "Lydian",
    "Mahajani",
    "Makasar",
    "Malayalam",
    "Mandaic",
    "Manichaean",
    "Marchen",
    "Masaram_Gondi",
    "Medefaidrin",
    "Meetei_Mayek",
    "Mende_Kikakui",
    "Meroitic_Cursive",
    "Meroitic_Hieroglyphs",
    "Miao",
    "Modi",
    "Mongolian",
    "Mro",
    "Multani",
    "Myanmar",
    "Nabataean",
    "Nag_Mundari",
    "Nandinagari",
    "New_Tai_Lue",
    "Newa",
    "Nko",
    "Nushu",
    "Nyiakeng_Puachue_Hmong",
    "Ogham",
    "Ol_Chiki",
    "Old_Hungarian",
    "Old_Italic",
    "Old_North_Arabian",
    "Old_Permic",
    "Old_Persian",
    "Old_Sogdian",
    "Old_South_Arabian",
    "Old_Turkic",
    "Old_Uyghur",
    "Oriya",
    "Osage",
    "Osmanya",
    "Pahawh_Hmong",
    "Palmyrene",
    "Pau_Cin_Hau",
    "Phags_Pa",
    "Phoenician",
    "Psalter_Pahlavi",
    "Rejang",
    "Runic",
    "Samaritan",
    "Saurashtra",
    "Sharada",
    "Shavian",
    "Siddham",
    "SignWriting",
    "Sinhala",
    "Sogdian",
    "Sora_Sompeng",
    "Soyombo",
    "Sundanese",
    "Syloti_Nagri",
    "Syriac",
    "Tagalog",
    "Tagbanwa",
    "Tai_Le",
    "Tai_Tham",
    "Tai_Viet",
    "Takri",
    "Tamil",
    "Tangsa",
    "Tangut",
    "Telugu",
    "Thaana",
    "Thai",
    "Tibetan",
    "Tifinagh",
    "Tirhuta",
    "Toto",
    "Ugaritic",
    "Vai",
    "Vithkuqi",
    "Wancho",
    "Warang_Citi",
    "Yezidi",
    "Yi",
    "Zanabazar_Square",
]
_ASSIGNED_RE2: Final = r"\p{C}\p{L}\p{M}\p{N}\p{P}\p{S}\p{Z}"  # RE2's C, like Go's, leaves out Cn
_LC_RE2: Final = r"\p{Lu}\p{Ll}\p{Lt}"
_ASCII_RE2: Final = r"\x00-\x7F"


def canonical(name: str) -> str:
    """Go's lookup key for a class name: `_`, `-` and spaces dropped, ASCII upper case first, lower after."""
    letters = [ch for ch in name if ch not in "_- "]
    if not letters:
        return ""
    head = letters[0].upper() if letters[0].isascii() else letters[0]
    return head + "".join(ch.lower() if ch.isascii() else ch for ch in letters[1:])


@functools.cache
def class_names() -> dict[str, str]:
    """Go's canonical class names → the name RE2 knows, or `*Name` for the four RE2 lacks."""
    names = {canonical(script): script for script in _SCRIPTS}
    names.update({canonical(category): category for category in _CATEGORIES})
    names.update({canonical(alias): category for alias, category in _CATEGORY_ALIASES.items()})
    names.update({"Any": "Any", "Ascii": "*Ascii", "Assigned": "*Assigned", "Cn": "*Cn", "Lc": "*Lc"})
    special = {"Cn": "*Cn", "LC": "*Lc"}
    return {key: special.get(value, value) for key, value in names.items()}


@functools.cache
def _python_ranges(name: str) -> str:
    """Bracket-class body for the code points whose general category (Python's tables) is in `name`."""
    categories = set(name.split())
    runs: list[tuple[int, int]] = []
    for cp in range(_MAX_RUNE + 1):
        if unicodedata.category(chr(cp)) in categories:
            if runs and runs[-1][1] == cp - 1:
                runs[-1] = (runs[-1][0], cp)
            else:
                runs.append((cp, cp))
    return "".join(f"\\x{{{lo:X}}}" if lo == hi else f"\\x{{{lo:X}}}-\\x{{{hi:X}}}" for lo, hi in runs)


def special_class(kind: str, negated: bool, in_class: bool) -> str:
    """RE2 text for Go's `Ascii`, `Assigned`, `Cn` and `LC`, standalone or inside a bracket class."""
    if kind == "Cn":
        kind, negated = "Assigned", not negated
    body = {"Ascii": _ASCII_RE2, "Assigned": _ASSIGNED_RE2, "Lc": _LC_RE2}[kind]
    if not in_class:
        return f"[{'^' if negated else ''}{body}]"
    if not negated:
        return body
    if kind == "Ascii":
        return rf"\x{{80}}-\x{{{_MAX_RUNE:X}}}"
    if kind == "Assigned":
        return _python_ranges("Cn")
    return _python_ranges(" ".join(c for c in [*_CATEGORIES, "Cn"] if c not in ("Lu", "Ll", "Lt") and len(c) == 2))
