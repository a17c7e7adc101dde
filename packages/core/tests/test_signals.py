"""cm.signals: a signal is raised where it lands, held while a store write runs, and never
lost when Python swallows its exception (the safe points raise it)."""

import contextlib
import gc
import signal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cm import signals
from cm.errors import Interrupted, Terminated

CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


@pytest.fixture(autouse=True)
def handlers():
    with signals.installed():
        yield
    signals.forget()


@settings(max_examples=30, deadline=None)
@given(sent=st.lists(st.sampled_from(list(CODES)), max_size=3))
def test_a_held_signal_is_raised_when_the_block_ends_and_a_second_at_once(sent):
    done = []
    with pytest.raises(Interrupted) if sent else contextlib.nullcontext() as caught:
        with signals.deferred():
            for number in sent:
                signal.raise_signal(number)
                done.append(number)
            done.append("end")
    if not sent:
        assert done == ["end"]
        return
    assert done == sent[:1] + (["end"] if len(sent) == 1 else [])  # the second stops it
    assert caught.value.exit_code == CODES[sent[1] if len(sent) > 1 else sent[0]]
    assert signals.received == ([] if len(sent) == 1 else sent[:2])  # for whoever handles it
    signals.forget()


def test_a_signal_python_swallows_is_raised_at_the_next_safe_point():
    class Finalized:
        def __del__(self):
            signal.raise_signal(signal.SIGTERM)  # raised inside __del__: Python drops it

    Finalized()
    gc.collect()
    assert signals.received == [signal.SIGTERM]
    with pytest.raises(Terminated):
        signals.check()
    signals.check()  # taken: raised once
