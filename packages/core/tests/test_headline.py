"""The headline is named by the real number of criteria (issue 20, point 8)."""

import io

import pytest
from rich.console import Console

from cm.evaluate.summary import headline_table


def printed(table) -> str:
    console = Console(file=io.StringIO(), width=120)
    console.print(table)
    return console.file.getvalue()


@pytest.mark.parametrize("criteria", [1, 8, 9, 10])
def test_the_headline_names_the_number_of_criteria(criteria):
    metrics = {"val_tuned/post_macro_f1": 0.5, "test_tuned/post_macro_f1": 0.25,
               "test_tuned/post_macro_f1_low": 0.125, "test_tuned/post_macro_f1_high": 0.375}
    text = printed(headline_table(metrics, criteria))
    assert f"{criteria}-criterion macro-F1" in text
    assert "0.250 [0.125, 0.375]" in text
    assert ("9-criterion" in text) == (criteria == 9)
