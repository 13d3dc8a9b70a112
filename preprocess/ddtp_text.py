"""Text rules for the DDTP corpus: the layout of a Debian long description and a sentence splitter.

A Debian ``Description`` field is a title (its first line) and a long description made of continuation
lines.  In the long description (each line already stripped of its one leading field-continuation space):

* a line ``.`` separates paragraphs;
* within a paragraph, lines that start with a list marker (``*``, ``-``, ``+``, ``•``, ``·``, ``–``, ``—``,
  ``−`` at any indentation, ``o`` only on an indented line) start a new *unit*; the marker is dropped (on every
  language alike).  A following line indented deeper than the marker continues that item; any other line starts a new
  text unit, and later unindented lines continue it;
* other indented lines (verbatim lines in Debian's rendering: tables, commands, lists without markers) are
  units of their own.  The paragraph's common indentation is removed first, so a paragraph indented as a
  whole is read as ordinary wrapped text;
* every unit is then split into sentences by :func:`split_sentences`.

Sentence splitter (rule based, the same for every language, so that the two sides of a pair are cut alike):
a boundary is a run of ``.``, ``!``, ``?`` or ``…`` (optionally followed by closing quotes or brackets)
followed by white space and then a capital letter (possibly behind opening quotes or brackets).  A single
``.`` is *not* a boundary when the word before it is

* a known abbreviation (``e.g.``, ``i.e.``, ``cf.``, ``z.B.``, ``bzw.``, ``p.ex.``, ``např.``, … see
  :data:`ABBREVIATIONS`, and Italian ``ad es.``; ``etc.`` is deliberately not one: it usually ends a
  sentence),
* dotted lower-case letters (``e.g``, ``d.h``, ``u.a``) or a single lower-case letter (``z. B.``),
* a number (German ordinals ``am 1. Januar``; an English sentence ending in ``Python 3.`` is the price).

The full-width ``。``, ``！`` and ``？`` (Chinese, Japanese) end a sentence wherever they stand.
Upper-case dotted abbreviations (``A.D.``, ``U.S.``) end a sentence when a capital follows.  Version numbers
(``1.2``) and ellipses inside words never match because no white space follows the dot.  Titles are never
split.  Text is cleaned: NFC, every run of white space (including no-break spaces, and ``⋅`` U+22C5, which
French translations use as a visible no-break space) becomes one space.
"""

import re
import unicodedata

# Words that end with a dot but do not end a sentence (compared in lower case, dot included).
ABBREVIATIONS = frozenset(
    """
    e.g. i.e. eg. ie. cf. vs. viz. approx. incl. esp. resp. fig. no. nos. vol. ver. v. mr. mrs. ms. dr.
    prof. st. jr. sr. al. ca. aka. misc. dept. max. min.
    p.ex. ex. env. c.-à-d. c-à-d. m. mme. mlle. mm. art. chap. éd. réf.
    z.b. bzw. ggf. evtl. inkl. bspw. vgl. sog. nr. dt. engl. bzgl. ggü. zzgl. allg. abs. str. mind. insb.
    i.d.r. v.a. s.o. s.u. u.a. u.ä. o.ä. d.h. z.t. u.u.
    p.es. sig. dott. pag. cfr.
    f.eks. bl.a. dvs. mht. evt. jf. pga. ift.
    např. tj. tzv. cca. č. napr. tzn. popř. příp. vč. mj. t.j. resp.
    """.split()
)

# Opening / closing quotes and brackets around a sentence boundary.
_OPENERS = "\"'“‘«„‚([{¿¡"
_CLOSERS = "\"'”’»)]}"
_CJK_END = "。！？"
_BOUNDARY = re.compile(
    r"[.!?…]+[" + re.escape(_CLOSERS) + r"]*\s+"
    r"|[" + _CJK_END + r"]+[」』）" + re.escape(_CLOSERS) + r"]*\s*"
)
_WORD_BEFORE = re.compile(r"(\S*)$")
_DOTTED_LOWER = re.compile(r"(?:\w\.)+\w")
_BULLET_ANY = re.compile(r"([*+\-•·–—−])\s+(?=\S)")
_BULLET_INDENTED = re.compile(r"(o)\s+(?=\S)")
_SPACES = re.compile(r"[\s\u22c5]+")


def clean(text):
    """NFC-normalise and collapse every run of white space (no-break spaces included) into one space."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()


def _is_boundary(text, match):
    """Whether the punctuation run of ``match`` (inside ``text``) ends a sentence; see the module doc."""
    if match.group(0)[0] in _CJK_END:
        return True
    rest = text[match.end() :].lstrip(_OPENERS + " ")
    if not rest or not rest[0].isupper():
        return False
    punct = match.group(0).rstrip().rstrip(_CLOSERS)
    if punct != ".":
        return True
    word = _WORD_BEFORE.search(text, 0, match.start()).group(1).lstrip(_OPENERS)
    if not word:
        return True
    if (word + ".").lower() in ABBREVIATIONS:
        return False
    if word == "es" and (" " + text[: match.start() - 2]).rstrip().lower().endswith(" ad"):  # Italian "ad es."
        return False
    if word.isdigit():
        return False
    if word[0].islower() and (len(word) == 1 or _DOTTED_LOWER.fullmatch(word)):
        return False
    return True


def split_sentences(text):
    """Split cleaned ``text`` into sentences (see the module doc for the rules); no empty strings."""
    sentences, start = [], 0
    for match in _BOUNDARY.finditer(text):
        if match.end() < len(text) and _is_boundary(text, match):
            sentences.append(text[start : match.end()].strip())
            start = match.end()
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]


def _bullet(line, indent):
    """The length of the list marker (with its space) at the start of ``line``, or 0."""
    m = _BULLET_ANY.match(line) or (_BULLET_INDENTED.match(line) if indent > 0 else None)
    return m.end() if m else 0


def paragraph_units(lines):
    """Group the raw lines of one paragraph into units (list items, verbatim lines, wrapped text)."""
    lines = [ln.replace("\u22c5", " ").expandtabs(8).rstrip() for ln in lines]
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        return []
    common = min(len(ln) - len(ln.lstrip(" ")) for ln in lines)
    units, kind, item_indent = [], None, 0
    for ln in lines:
        ln = ln[common:]
        stripped = ln.lstrip(" ")
        indent = len(ln) - len(stripped)
        marker = _bullet(stripped, indent)
        if marker:
            units.append([stripped[marker:]])
            kind, item_indent = "item", indent
        elif kind == "item" and indent > item_indent:
            units[-1].append(stripped)
        elif indent == 0:
            if kind == "text":
                units[-1].append(stripped)
            else:
                units.append([stripped])
                kind = "text"
        else:
            units.append([stripped])
            kind = "verbatim"
    return [u for u in (clean(" ".join(parts)) for parts in units) if u]


def split_long_description(lines):
    """Paragraphs of a long description: a list of paragraphs, each a list of sentences (empty ones dropped)."""
    paragraphs, current = [], []
    for ln in lines + ["."]:
        if ln.strip() == ".":
            sentences = [s for unit in paragraph_units(current) for s in split_sentences(unit)]
            if sentences:
                paragraphs.append(sentences)
            current = []
        else:
            current.append(ln)
    return paragraphs
