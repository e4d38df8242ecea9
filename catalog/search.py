"""Catalog search in the words a maintenance team uses: pure, no Django.

A part is found by its name, description, category and tags, and by its parameters' words:
labels, help texts and choices ("M6" is a choice of a knob's thread), and by a size within a
parameter's range when the size comes with a word of that parameter ("8 mm bore" finds a
collar whose bore diameter goes from 3 to 80 mm). Synonyms that a catalog admin keeps
(catalog.models.SearchSynonym, e.g. "M6, 6 mm thread, 6 mm" or "608, 8 mm bore bearing")
let one phrase stand for another.

Every part of the query must match (a phrase of a synonym group counts as one part, matched
by any phrase of its group); parts are ranked by where they matched, name and tags first.

    "M6"            the knob and the standoff (Thread: M6), the parts whose help says M6
    "6 mm"          with the synonym "M6, 6 mm thread, 6 mm": the same parts
    "608 bearing"   with "608, 8 mm bore bearing": the shaft collar (bore 3-80 mm; tags: bearing)
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Words that say nothing about a part: "collar for a 25 mm shaft" is "collar 25 mm shaft".
STOP_WORDS = frozenset("a an and for in of on or the to with".split())
UNITS = ("mm",)
_NUMBER = r"\d+(?:[.,]\d+)?"


@dataclass(frozen=True)
class SizeRange:
    """A length parameter as search sees it: its words (label, help) and its range."""

    words: str  # normalised
    min: float
    max: float


@dataclass(frozen=True)
class SearchDoc:
    """One part family's searchable words, built from the family and its current revision."""

    key: object  # the family (or its id): what the caller gets back
    name: str
    tags: str  # tags and parameter choices: the words a part is known by
    text: str  # description, category, slug, parameter labels and help
    sizes: tuple[SizeRange, ...]


@dataclass(frozen=True)
class Word:
    text: str


@dataclass(frozen=True)
class Size:
    """A size in the query ("8 mm"), with the word that follows it ("bore") if any."""

    value: float
    unit: str
    word: str = ""


Atom = Word | Size
# One part of the query: any of its alternatives matches, an alternative when all its atoms do.
Concept = tuple[tuple[Atom, ...], ...]

WEIGHTS = {"name": 4, "tags": 3, "text": 1, "size": 1}


def normalise(text: str) -> str:
    """Lower case, one space between words, a space between a number and its unit
    ("6mm" -> "6 mm"), a decimal comma as a point ("6,5 mm" -> "6.5 mm")."""
    text = text.lower().replace("ø", " ").replace("_", " ")
    text = re.sub(r"(\d),(\d)", r"\1.\2", text)
    text = re.sub(rf"(\d)({'|'.join(UNITS)})\b", r"\1 \2", text)
    text = re.sub(r"[^\w.+\-/ ]+", " ", text)
    return " ".join(text.split())


def synonym_groups(rows: Iterable[str]) -> list[tuple[str, ...]]:
    """Each row's comma-separated phrases, normalised: "M6, 6 mm thread" -> ("m6", "6 mm
    thread"); a row with fewer than two phrases means nothing and is skipped."""
    groups = []
    for row in rows:
        phrases = tuple(dict.fromkeys(p for p in (normalise(x) for x in row.split(",")) if p))
        if len(phrases) > 1:
            groups.append(phrases)
    return groups


def parse_query(query: str, synonyms: Sequence[tuple[str, ...]] = ()) -> list[Concept]:
    """The parts of a query, each with its alternatives: a phrase of a synonym group found
    in the query (longest first) stands for every phrase of its group; every other word or
    size stands for itself."""
    text = f" {normalise(query)} "
    concepts: list[Concept] = []
    phrases = sorted(
        ((phrase, group) for group in synonyms for phrase in group),
        key=lambda item: len(item[0]),
        reverse=True,
    )
    for phrase, group in phrases:
        needle = f" {phrase} "
        if needle in text:
            text = text.replace(needle, " | ", 1)
            concepts.append(tuple(_atoms(p) for p in group))
    for chunk in text.split("|"):
        for atom in _atoms(chunk):
            concepts.append(((atom,),))
    return [c for c in concepts if all(c)]


def _atoms(phrase: str) -> tuple[Atom, ...]:
    tokens = [t for t in phrase.split() if t not in STOP_WORDS]
    atoms: list[Atom] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        unit = tokens[index + 1] if index + 1 < len(tokens) else ""
        if re.fullmatch(_NUMBER, token) and unit in UNITS:
            after = tokens[index + 2] if index + 2 < len(tokens) else ""
            word = after if after and not re.fullmatch(_NUMBER, after) else ""
            atoms.append(Size(float(token), unit, word))
            if word:
                atoms.append(Word(word))  # "8 mm bore": a bore, 8 mm within its range
            index += 3 if word else 2
            continue
        atoms.append(Word(token))
        index += 1
    return tuple(atoms)


def search(docs: Iterable[SearchDoc], concepts: Sequence[Concept]) -> list[SearchDoc]:
    """The documents every concept matches, best first (then by name)."""
    found: list[tuple[int, str, SearchDoc]] = []
    for doc in docs:
        score = 0
        for concept in concepts:
            best = max((_alternative_score(doc, atoms) for atoms in concept), default=0)
            if not best:
                break
            score += best
        else:
            found.append((-score, doc.name, doc))
    found.sort(key=lambda item: (item[0], item[1]))
    return [doc for _, _, doc in found]


def _alternative_score(doc: SearchDoc, atoms: tuple[Atom, ...]) -> int:
    score = 0
    for atom in atoms:
        points = _word_score(doc, atom.text) if isinstance(atom, Word) else _size_score(doc, atom)
        if not points:
            return 0
        score += points
    return score


def _word_score(doc: SearchDoc, word: str) -> int:
    # A word matches at the start of a word ("bearing" finds "bearings"), never inside a
    # number ("m6" is not "m60", "6" is not "16").
    pattern = rf"(?<![\w.]){re.escape(word)}(?!\d)"
    for field in ("name", "tags", "text"):
        if re.search(pattern, getattr(doc, field)):
            return WEIGHTS[field]
    return 0


def _size_score(doc: SearchDoc, size: Size) -> int:
    said = rf"(?<![\d.]){_NUMBER} {size.unit}\b"
    for field in ("name", "tags", "text"):
        for match in re.finditer(said, getattr(doc, field)):
            if float(match.group(0).split()[0]) == size.value:
                return WEIGHTS[field]
    if size.word:
        for rng in doc.sizes:
            if rng.min <= size.value <= rng.max and re.search(
                rf"(?<!\w){re.escape(size.word)}", rng.words
            ):
                return WEIGHTS["size"]
    return 0


def search_doc(
    *,
    key: object,
    name: str,
    slug: str,
    category: str,
    tags: str,
    description: str,
    parameters: Iterable[tuple[str, str, str, tuple[str, ...], float | None, float | None]],
) -> SearchDoc:
    """A family's searchable words; `parameters` are its current revision's (label, help,
    type, choices, min, max)."""
    choices: list[str] = []
    words: list[str] = []
    sizes: list[SizeRange] = []
    for label, help_text, kind, options, low, high in parameters:
        choices.extend(options)
        words.append(f"{label}. {help_text}")
        if kind == "length" and low is not None and high is not None:
            sizes.append(SizeRange(normalise(f"{label} {help_text}"), low, high))
    return SearchDoc(
        key=key,
        name=normalise(name),
        tags=normalise(" , ".join([tags, *choices])),
        text=normalise(" ".join([description, category, slug.replace("-", " "), *words])),
        sizes=tuple(sizes),
    )
