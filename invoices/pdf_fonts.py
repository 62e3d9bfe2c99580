"""Which scripts of a document's text no installed font can draw.

A PDF's text is laid out by WeasyPrint through Pango, which draws each character
with the first font of the stylesheet's font-family list that has it, then with
any other font fontconfig knows (its fallback). A character that no installed
font has prints as an empty box (tofu). Before a document is rendered, its
characters are checked against the union of the character sets of every font
fontconfig lists: that union is read once per process and per font set (the
fonts a process sees do not change under it: WeasyPrint's font configuration is
built once too), and each character checked is remembered, so a document costs a
set of its characters and a few dictionary look-ups.

What is missing is named by Unicode script ("Hiragana", "Han") and, for a reader,
by what to install: the Noto fonts of Debian's packages.
"""

import ctypes
import ctypes.util
import functools
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from fontTools import unicodedata as script_data

# Characters that are never drawn with a glyph of their own: controls, format
# characters (bidi marks and isolates, zero-width joiners), separators and spaces.
UNDRAWN_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Cs"})
# Scripts shared by several writing systems: a character of these is named by the
# scripts it is used with (its script extensions), or not at all.
SHARED_SCRIPTS = frozenset({"Zyyy", "Zinh", "Zzzz"})

CJK_PACKAGE = "fonts-noto-cjk"
CORE_PACKAGE = "fonts-noto-core"
# What a reader calls a script, and the Debian package whose Noto fonts draw it.
SCRIPT_HINTS = {
    "Hani": ("Chinese, Japanese or Korean (Han)", CJK_PACKAGE),
    "Hira": ("Japanese (Hiragana)", CJK_PACKAGE),
    "Kana": ("Japanese (Katakana)", CJK_PACKAGE),
    "Hang": ("Korean (Hangul)", CJK_PACKAGE),
    "Bopo": ("Chinese (Bopomofo)", CJK_PACKAGE),
    "Arab": ("Arabic", CORE_PACKAGE),
    "Hebr": ("Hebrew", CORE_PACKAGE),
    "Grek": ("Greek", CORE_PACKAGE),
    "Cyrl": ("Cyrillic", CORE_PACKAGE),
    "Thai": ("Thai", CORE_PACKAGE),
    "Deva": ("Devanagari", CORE_PACKAGE),
}
# Scripts outside the table: most have a Noto font in one of these.
OTHER_PACKAGES = "fonts-noto-core or fonts-noto-extra"

# fontconfig's C interface, as far as it is used here.
FC_MATCH_PATTERN = 0
FC_RESULT_MATCH = 0


@dataclass(frozen=True)
class MissingScript:
    """A script some characters of a document are in that no installed font has."""

    code: str  # ISO 15924: "Hira"
    name: str  # Unicode's: "Hiragana"
    label: str  # a reader's: "Japanese (Hiragana)"
    package: str  # what draws it: "fonts-noto-cjk"


class FontCoverage:
    """What the fonts fontconfig lists can draw: `missing(text)` names the scripts
    of `text` that have characters none of them has. Thread-safe."""

    def __init__(self, has_character):
        # has_character(code point) -> bool: whether some font has a glyph for it.
        self._has_character = has_character
        self._known: dict[str, bool] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_fontconfig(cls, config_file: Path | None = None) -> "FontCoverage":
        """The fonts of the system's fontconfig (its FONTCONFIG_FILE, as Pango reads
        it), or of `config_file` (a fonts.conf of its own: tests)."""
        return cls(_fontconfig_charset(config_file))

    def _drawable(self, character: str) -> bool:
        known = self._known.get(character)
        if known is None:
            known = self._has_character(ord(character))
            with self._lock:
                self._known[character] = known
        return known

    def missing_characters(self, text: str) -> frozenset[str]:
        """The characters of `text` that would print as boxes: drawn (not a space,
        a control or a bidi mark) and in no installed font."""
        return frozenset(
            character
            for character in set(text)
            if character >= "\x7f"
            and unicodedata.category(character) not in UNDRAWN_CATEGORIES
            and not self._drawable(character)
        )

    def missing(self, text: str) -> tuple[MissingScript, ...]:
        """The scripts of `text`'s missing characters (missing_characters), in the
        order of their codes; nothing when every character has a font."""
        codes = set()
        for character in self.missing_characters(text):
            code = script_data.script(character)
            if code in SHARED_SCRIPTS:
                codes.update(set(script_data.script_extension(character)) - SHARED_SCRIPTS)
            else:
                codes.add(code)
        return tuple(missing_script(code) for code in sorted(codes))


def missing_script(code: str) -> MissingScript:
    name = script_data.script_name(code, default=code)
    label, package = SCRIPT_HINTS.get(code, (name, OTHER_PACKAGES))
    return MissingScript(code=code, name=name, label=label, package=package)


def missing_scripts_text(scripts: tuple[MissingScript, ...]) -> str:
    """'Japanese (Hiragana), Chinese, Japanese or Korean (Han) — install
    fonts-noto-cjk': what a reader is told, or "" when nothing is missing."""
    if not scripts:
        return ""
    packages = list(dict.fromkeys(script.package for script in scripts))
    return "{} — install {}".format(
        ", ".join(script.label for script in scripts), "; ".join(packages)
    )


# Text direction and the language of CJK text, for the elements that print a
# customer's name, address or a line's description (templatetags/pdf_text.py).
# WeasyPrint sets the direction from a dir="ltr"/"rtl" attribute but does nothing
# with dir="auto", so what dir="auto" would decide is decided here.

RTL_CLASSES = frozenset({"R", "AL"})
LTR_CLASSES = frozenset({"L"})
# U+2068 FIRST STRONG ISOLATE ... U+2069 POP DIRECTIONAL ISOLATE: a line between
# them takes the direction of its own first strong character, as if it were a
# paragraph with dir="auto", whatever the direction of the lines around it.
FIRST_STRONG_ISOLATE, POP_ISOLATE = "\u2068", "\u2069"


def text_direction(text: str) -> str:
    """ "rtl" when the first character with a strong direction is right-to-left
    (Arabic, Hebrew, ...), otherwise "ltr": the HTML dir="auto" rule."""
    for character in text:
        bidi = unicodedata.bidirectional(character)
        if bidi in RTL_CLASSES:
            return "rtl"
        if bidi in LTR_CLASSES:
            return "ltr"
    return "ltr"


def has_right_to_left(text: str) -> bool:
    return any(unicodedata.bidirectional(character) in RTL_CLASSES for character in text)


def isolate_lines(text: str) -> str:
    """Each line of `text` in a first-strong isolate, when any of them is written
    right to left (an Arabic address above a Latin email): each then reads in its
    own direction. Text without right-to-left characters is returned as it is."""
    if not has_right_to_left(text):
        return text
    return "\n".join(f"{FIRST_STRONG_ISOLATE}{line}{POP_ISOLATE}" for line in text.split("\n"))


def cjk_language(text: str) -> str:
    """The language CJK text is most likely in, for the lang attribute that picks
    the regional forms of its Han characters: "ja" with kana, "ko" with Hangul,
    "zh" for Han alone; "" for text without any."""
    codes = {script_data.script(character) for character in text if character >= "\u1100"}
    if codes & {"Hira", "Kana"}:
        return "ja"
    if "Hang" in codes:
        return "ko"
    if codes & {"Hani", "Bopo"}:
        return "zh"
    return ""


def _fontconfig_charset(config_file: Path | None):
    """has_character for the union of the character sets of every font the
    fontconfig configuration lists (FcFontSort of a bare pattern, untrimmed: the
    whole fallback list Pango draws from)."""
    name = ctypes.util.find_library("fontconfig")
    if name is None:
        raise OSError("libfontconfig is not installed")
    fc = ctypes.CDLL(name)
    fc.FcConfigCreate.restype = ctypes.c_void_p
    fc.FcInitLoadConfigAndFonts.restype = ctypes.c_void_p
    fc.FcConfigParseAndLoad.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    fc.FcConfigBuildFonts.argtypes = [ctypes.c_void_p]
    fc.FcPatternCreate.restype = ctypes.c_void_p
    fc.FcConfigSubstitute.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    fc.FcDefaultSubstitute.argtypes = [ctypes.c_void_p]
    fc.FcFontSort.restype = ctypes.c_void_p
    fc.FcFontSort.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.POINTER(ctypes.c_int),
    ]
    fc.FcCharSetHasChar.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    fc.FcCharSetHasChar.restype = ctypes.c_int
    if config_file is None:
        config = fc.FcInitLoadConfigAndFonts()
    else:
        config = fc.FcConfigCreate()
        if not fc.FcConfigParseAndLoad(config, str(config_file).encode(), 1):
            raise OSError(f"fontconfig could not read {config_file}")
        fc.FcConfigBuildFonts(config)
    pattern = fc.FcPatternCreate()
    fc.FcConfigSubstitute(config, pattern, FC_MATCH_PATTERN)
    fc.FcDefaultSubstitute(pattern)
    charset, result = ctypes.c_void_p(), ctypes.c_int()
    fontset = fc.FcFontSort(config, pattern, 0, ctypes.byref(charset), ctypes.byref(result))
    if not fontset or not charset.value:
        # No font at all: nothing can be drawn.
        return lambda code_point: False
    # The configuration, pattern, font set and character set live as long as the
    # process (one per font set, cached by installed_fonts).
    union = charset.value
    return lambda code_point: bool(fc.FcCharSetHasChar(union, code_point))


@functools.cache
def installed_fonts() -> FontCoverage:
    """The system's fonts, read once per process."""
    return FontCoverage.from_fontconfig()
