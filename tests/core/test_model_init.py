"""The model's quick `__init__` (`model._quick`) against what `dataclasses` generates: the
same parameters and defaults, and for any values, positional or by keyword, an instance
equal to one built field by field, of the class itself, and still frozen."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from residency import model

QUICK = [cls for cls in vars(model).values()
         if isinstance(cls, type) and dataclasses.is_dataclass(cls)
         and cls.__module__ == model.__name__ and cls is not model.DataMap]
VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5),
                   st.tuples(st.text(max_size=3)), st.frozensets(st.sampled_from("ab")))


def _generated(cls: type) -> type:
    """The same fields as a plain frozen slotted dataclass, with the generated __init__."""
    return dataclasses.make_dataclass(
        cls.__name__,
        [(f.name, Any, dataclasses.field(default=f.default)) if f.default is not
         dataclasses.MISSING else (f.name, Any) for f in dataclasses.fields(cls)],
        frozen=True, slots=True)


def _field_by_field(cls: type, values: dict[str, object]) -> object:
    ref = object.__new__(cls)
    for f in dataclasses.fields(cls):
        object.__setattr__(ref, f.name, values.get(f.name, f.default))
    return ref


def test_every_model_record_but_the_map_is_quick() -> None:
    assert {c.__name__ for c in QUICK} >= {"Finding", "Transfer", "Flow", "System",
                                            "Safeguard", "Basis", "Location"}
    for cls in QUICK:
        assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"
        assert cls.__init__ is not _generated(cls).__init__
        ours, theirs = (inspect.signature(c.__init__).parameters.values()
                        for c in (cls, _generated(cls)))
        assert [(p.name, p.kind, p.default) for p in ours] == \
            [(p.name, p.kind, p.default) for p in theirs]
        assert cls.__init__.__annotations__["return"] in (None, "None")


@pytest.mark.parametrize("cls", QUICK, ids=lambda c: c.__name__)
@settings(max_examples=40, derandomize=True, deadline=None)
@given(data=st.data())
def test_quick_init_builds_the_same_frozen_instance(cls: type, data: st.DataObject) -> None:
    fields = dataclasses.fields(cls)
    required = sum(f.default is dataclasses.MISSING for f in fields)
    given_n = data.draw(st.integers(required, len(fields)))
    values = {f.name: data.draw(VALUES) for f in fields[:given_n]}
    by_keyword = data.draw(st.booleans())
    made = cls(**values) if by_keyword else cls(*values.values())
    expected = _field_by_field(cls, values)
    assert type(made) is cls
    for f in fields:
        assert getattr(made, f.name) is getattr(expected, f.name)
    assert made == expected
    assert repr(made) == repr(expected)
    name = data.draw(st.sampled_from([f.name for f in fields]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(made, name, 1)


def test_quick_refuses_what_it_does_not_support() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        items: tuple[str, ...] = dataclasses.field(default_factory=tuple)

    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    for cls in (Factory, NoSlots):
        with pytest.raises(TypeError):
            model._quick(cls)


def test_a_subclass_is_built_the_usual_way() -> None:
    class Noted(model.Finding):  # no __slots__: a __dict__, another layout
        pass

    made = Noted("RES-T001", model.Severity.ERROR, "m", "f1", "flow", countries=("US",))
    assert type(made) is Noted
    assert made.countries == ("US",) and made.regime is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.rule = "x"  # type: ignore[misc]
