"""Sentence spans from the segmenter and annotated sentences located among them."""

from hypothesis import given, settings
from hypothesis import strategies as st

from cm.data.sentences import Span, locate, overlapping, split_sentences

WORDS = st.sampled_from(["I", "can't", "sleep", "Dr.", "e.g.", "3.5", "well", "...", "no!",
                         "why?", "it", "is", "fine.", "ok", "\n", "  "])


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
