"""Catalog search in the team's words (catalog.search): pure, no database."""

from catalog.search import Size, Word, normalise, parse_query, search, search_doc, synonym_groups

SYNONYMS = synonym_groups(["M6, 6 mm thread, 6 mm", "608, 608 bearing, 8 mm bore bearing", "x"])

KNOB = search_doc(
    key="knob",
    name="Clamping knob",
    slug="knob",
    category="Knobs & handles",
    tags="clamping knob, star knob, grip",
    description="Star knob with a captive hex nut.",
    parameters=[
        ("Thread", "Metric thread of the nut.", "choice", ("M4", "M5", "M6", "M8"), None, None),
        ("Knob diameter", "", "length", (), 20, 80),
    ],
)
COLLAR = search_doc(
    key="collar",
    name="Shaft collar",
    slug="shaft-collar",
    category="Shafts & bearings",
    tags="set collar, stop ring, bearing, shaft",
    description="One-piece set-screw collar that stops a shaft or a bearing from sliding.",
    parameters=[
        ("Bore diameter", "Shaft diameter.", "length", (), 3, 80),
        ("Width", "Length along the shaft.", "length", (), 6, 40),
    ],
)
SPACER = search_doc(
    key="spacer",
    name="Spacer / bushing",
    slug="spacer",
    category="Spacers & bushings",
    tags="sleeve, bushing, M60 washer",
    description="Round spacer, 16 mm long by default.",
    parameters=[("Inner diameter", "Bore: the shaft diameter.", "length", (), 2, 100)],
)
DOCS = [KNOB, COLLAR, SPACER]


def found(query: str) -> list[object]:
    return [doc.key for doc in search(DOCS, parse_query(query, SYNONYMS))]


def test_words_are_normalised_as_people_type_them() -> None:
    assert normalise("  M6  Ø8mm 6,5MM_bore ") == "m6 8 mm 6.5 mm bore"


def test_a_synonym_row_is_split_into_phrases_and_a_lone_phrase_is_no_group() -> None:
    assert SYNONYMS == [("m6", "6 mm thread", "6 mm"), ("608", "608 bearing", "8 mm bore bearing")]


def test_a_size_takes_the_word_after_it() -> None:
    assert parse_query("8mm bore") == [((Size(8.0, "mm", "bore"),),), ((Word("bore"),),)]
    assert parse_query("collar for a 25 mm shaft")[0] == ((Word("collar"),),)


def test_a_thread_is_found_among_a_parameters_choices_and_not_inside_another_number() -> None:
    assert found("M6") == ["knob"]  # the spacer's "M60" is no M6
    assert found("m6 knob") == ["knob"]


def test_a_synonym_finds_what_its_other_phrases_find() -> None:
    assert found("6 mm") == ["knob"]
    assert found("6mm thread") == ["knob"]


def test_a_size_with_a_word_finds_parts_whose_parameter_of_that_word_can_take_it() -> None:
    assert found("8 mm bore") == ["collar", "spacer"]  # collar: Bore diameter; spacer: its help
    assert found("90 mm bore") == ["spacer"]  # the collar's bore stops at 80 mm
    assert found("16 mm") == ["spacer"]  # a size in the text


def test_608_bearing_finds_the_collar_through_the_admins_synonym() -> None:
    assert found("608 bearing") == ["collar"]
    assert found("608") == ["collar"]


def test_every_word_must_match_and_name_matches_rank_first() -> None:
    assert found("shaft") == ["collar", "spacer"]  # in the collar's name, the spacer's help
    assert found("collar gearbox") == []
    assert found("the") == ["knob", "collar", "spacer"]  # nothing but stop words: everything
