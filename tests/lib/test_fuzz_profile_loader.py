"""Fuzzing the profile loader: any document gives a ``Profile`` or a ``ProfileError``, nothing else.

Documents are built from nested mappings, lists and scalars at the field
names profiles use, or are the built-in profiles with random mutations (a
value replaced, a key dropped, a mapping turned into a list, …), both as
parsed objects and as YAML text. ``SUBMETER_FUZZ=soak`` runs many more examples.
"""

from __future__ import annotations

import copy
import math
from datetime import date
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.submeter.pysubmeter import Profile, ProfileError
from custom_components.submeter.pysubmeter.profile_loader import BUILTIN_DIR, parse_profile, parse_yaml

from .fuzz_settings import FUZZ

BUILTIN_TEXTS = {path.name: path.read_text(encoding="utf-8") for path in sorted(BUILTIN_DIR.glob("*.yaml"))}
BUILTIN_DOCS = {name: yaml.safe_load(text) for name, text in BUILTIN_TEXTS.items()}


def _names(node: object) -> set[str]:
    """Every key and text value of the built-in profiles: the vocabulary the fuzzer speaks."""
    if isinstance(node, dict):
        return {str(k) for k in node} | {n for v in node.values() for n in _names(v)}
    if isinstance(node, list):
        return {n for v in node for n in _names(v)}
    return {node} if isinstance(node, str) else set()


NAMES = sorted(set().union(*(_names(doc) for doc in BUILTIN_DOCS.values())) | {"values", "bases", "models", "length"})
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 70000) | st.integers() | st.sampled_from([2**64, -(2**63), 10**400]),
    st.floats() | st.sampled_from([math.nan, math.inf, 1e308]),
    st.sampled_from(NAMES),
    st.text(max_size=12),
    st.binary(max_size=4),
    st.just(date(2026, 12, 1)),
)
KEYS = st.sampled_from(NAMES) | st.integers(-2, 40) | st.sampled_from([None, True, 1.5])
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=6),
    max_leaves=30,
)


def _paths(node: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated_builtin(draw: st.DrawFn) -> tuple[str, object]:
    """A built-in profile document with one to three structural mutations."""
    name = draw(st.sampled_from(sorted(BUILTIN_DOCS)))
    doc = copy.deepcopy(BUILTIN_DOCS[name])
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        if not path:
            continue
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        key, value = path[-1], parent[path[-1]]
        kind = draw(st.sampled_from(["replace", "delete", "listify", "mappify", "wrap", "values", "rename"]))
        if kind == "replace":
            parent[key] = draw(DOCUMENTS)
        elif kind == "delete":
            del parent[key]
        elif kind == "listify":  # a list where a mapping (or scalar) is expected
            parent[key] = list(value.values()) if isinstance(value, dict) else [value]
        elif kind == "mappify":  # a mapping where a list (or scalar) is expected
            parent[key] = dict(enumerate(value)) if isinstance(value, list) else {"value": value}
        elif kind == "wrap":
            parent[key] = [[value]]
        elif kind == "values":  # a string where a number is expected, a bool where an int is, …
            parent[key] = draw(st.sampled_from([str(value), True, None, 1.5, -1, 2**40, "1e999"]))
        elif isinstance(parent, dict):
            parent[draw(KEYS)] = parent.pop(key)
    return name, doc


def parses_or_refuses(document: object, source: str) -> None:
    result: Profile | ProfileError
    try:
        result = parse_profile(document, source, user=True)
    except ProfileError as err:
        result = err
    if isinstance(result, ProfileError):
        assert result.source == source
        assert len(str(result)) < 2000  # a short message, whatever the document
    else:
        assert isinstance(result, Profile)


@FUZZ
@given(DOCUMENTS | st.dictionaries(st.sampled_from(NAMES), DOCUMENTS, max_size=8))
def test_random_documents(document: object) -> None:
    parses_or_refuses(document, "fuzz.yaml")


@FUZZ
@given(mutated_builtin())
def test_mutated_builtin_documents(case: tuple[str, object]) -> None:
    name, document = case
    parses_or_refuses(document, name)


@settings(FUZZ, max_examples=max(FUZZ.max_examples // 4, 1))  # pure-Python YAML of a whole profile is slow
@given(mutated_builtin())
def test_mutated_builtin_documents_as_yaml(case: tuple[str, object]) -> None:
    """The same documents through the loader's YAML reader (dumped with keys YAML can carry)."""
    name, document = case
    try:
        text = yaml.safe_dump(document)
    except yaml.YAMLError:
        return
    try:
        parsed = parse_yaml(text, name)
    except ProfileError:
        return
    parses_or_refuses(parsed, name)


@FUZZ
@given(st.sampled_from(sorted(BUILTIN_TEXTS)), st.data())
def test_mutated_builtin_texts(name: str, data: st.DataObject) -> None:
    """Bytes of a built-in file cut, overwritten or repeated: bad YAML is a ProfileError too."""
    text = BUILTIN_TEXTS[name]
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, min(len(text), start + 40)))
    junk = data.draw(st.sampled_from(["", "[", "{", "&a ", "*a", "!!python/object:os.system ", "\t", ": -", "- "]))
    mutated = text[:start] + junk + text[end:] * data.draw(st.integers(0, 2))
    try:
        parsed = parse_yaml(mutated, name)
    except ProfileError:
        return
    parses_or_refuses(parsed, name)


def test_builtin_documents_are_valid() -> None:
    """The mutations' starting points are profiles the loader accepts."""
    for name, document in BUILTIN_DOCS.items():
        assert isinstance(parse_profile(document, name), Profile)
