"""Sentence spans from the segmenter and annotated sentences located among them."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cm.data.sentences import Span, locate, overlapping, split_sentences

WORDS = st.sampled_from(["I", "can't", "sleep", "Dr.", "e.g.", "3.5", "well", "...", "no!",
                         "why?", "it", "is", "fine.", "ok", "\n", "  ", "me.", "him.", "it.I",
                         "Please.", "\U0001F614", "i", "a.m.", "lbs.", "Mom.", "\u2764\ufe0f"])

# Real-looking Reddit sentence ends: the text, then the sentences it must give.
TABLE = {
    "first-person end pysbd takes for an abbreviation": (
        "Everyone would be better off without me. I stopped eating.",
        ["Everyone would be better off without me.", "I stopped eating."]),
    "him.": ("I told him. He didn't care.", ["I told him.", "He didn't care."]),
    "it. then lowercase": ("I can't do it. i give up.", ["I can't do it.", "i give up."]),
    "me. then lowercase": ("nobody would miss me. i know that.",
                           ["nobody would miss me.", "i know that."]),
    "no space after the period": ("I hate it.I can't sleep.", ["I hate it.", "I can't sleep."]),
    "no space, capital word": ("Leave me alone.Please.", ["Leave me alone.", "Please."]),
    "no space after a question": ("Why bother?Nobody cares.", ["Why bother?", "Nobody cares."]),
    "line breaks": ("I feel empty\nI can't get out of bed\n\nNothing matters",
                    ["I feel empty", "I can't get out of bed", "Nothing matters"]),
    "ellipsis": ("I'm so tired... I just want to sleep", ["I'm so tired...",
                                                          "I just want to sleep"]),
    "ellipsis without space": ("so tired...I give up", ["so tired...", "I give up"]),
    "emoji end": ("Nobody cares \U0001F614 I just sleep all day",
                  ["Nobody cares \U0001F614", "I just sleep all day"]),
    "emoji with variation selector": ("love you \u2764\ufe0f Goodbye.",
                                      ["love you \u2764\ufe0f", "Goodbye."]),
    "list": ("Things I lost:\n1. my job\n2. my appetite\n- my friends",
             ["Things I lost:", "1. my job", "2. my appetite", "- my friends"]),
    "titles stay": ("Dr. Smith said I have depression. I don't believe him.",
                    ["Dr. Smith said I have depression.", "I don't believe him."]),
    "times stay": ("I wake up at 3 a.m. every night. It's awful.",
                   ["I wake up at 3 a.m. every night.", "It's awful."]),
    "e.g. stays": ("Small things, e.g. Netflix, feel heavy.",
                   ["Small things, e.g. Netflix, feel heavy."]),
    "quoted end": ('She said "get over it." I can\'t.', ['She said "get over it."', "I can't."]),
    "lowercase after a period, no space": ("check reddit.com for help",
                                           ["check reddit.com for help"]),
}


@pytest.mark.parametrize("case", list(TABLE))
def test_reddit_sentence_ends(case):
    text, expected = TABLE[case]
    spans = split_sentences(text)
    assert [text[s.start:s.end] for s in spans] == expected


def test_split_sentences_gives_exact_spans():
    text = "I can't sleep. Dr. Smith said it is fine!  Is it? Yes."
    spans = split_sentences(text)
    assert [text[s.start:s.end] for s in spans] == [
        "I can't sleep.", "Dr. Smith said it is fine!", "Is it?", "Yes."]


def test_repeated_sentences_get_their_own_spans():
    text = "I am tired. I am tired. I am tired."
    assert split_sentences(text) == [Span(0, 11), Span(12, 23), Span(24, 35)]


@settings(max_examples=60, deadline=None)
@given(st.lists(WORDS, min_size=1, max_size=30).map(" ".join))
def test_spans_are_ordered_stripped_and_cover_every_visible_character(text):
    spans = split_sentences(text)
    covered = set()
    for before, after in zip(spans, spans[1:], strict=False):
        assert before.end <= after.start
    for span in spans:
        piece = text[span.start:span.end]
        assert piece and piece == piece.strip()
        covered.update(range(span.start, span.end))
    assert {i for i, ch in enumerate(text) if not ch.isspace()} <= covered


def test_locate_and_overlapping():
    text = "First one. Second; third part. Last."
    spans = split_sentences(text)
    assert overlapping(spans, locate(text, "third part.")) == [1]
    assert overlapping(spans, locate(text, "one. Second;")) == [0, 1]
    assert locate(text, "not here") is None
    assert locate(text, "  Last. ") == Span(31, 36)
