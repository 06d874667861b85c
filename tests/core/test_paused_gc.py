"""`_io.paused_gc`: what outlives the pause is old at once (no collection walks it as
young), and is still collected when it becomes cyclic garbage."""

from __future__ import annotations

import gc
import weakref

from residency._io import paused_gc


class Node:
    def __init__(self) -> None:
        self.other: object = None


def test_what_outlives_the_pause_is_in_the_oldest_generation() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        kept = Node()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0  # nothing is left out of collection for good
    assert any(o is kept for o in gc.get_objects(generation=2))
    assert not any(o is kept for o in gc.get_objects(generation=0))


def test_cycles_made_during_the_pause_are_still_collected() -> None:
    with paused_gc():
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
    assert gone() is not None  # a cycle: reference counting alone cannot free it
    gc.collect()
    assert gone() is None


def test_a_pause_inside_a_pause_leaves_the_collector_off() -> None:
    with paused_gc():
        with paused_gc():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
