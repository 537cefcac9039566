"""content.py: the typed pieces of the Store protocol (traits, link results, options)."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from ocikit.content import (DEFAULT_TRAITS, Aborter, BlobLinker, LinkResult, Options, SparseIndex, SparseIndexProbe,
                            Store, StoreTraits)
from ocikit.testing.memory_store import LinkingMemoryStore, MemoryStore, ProbingMemoryStore, StagingMemoryStore


def test_options_are_typed_fields_with_no_free_form_mapping() -> None:
    hints = typing.get_type_hints(Options)
    assert set(hints) == {f.name for f in dataclasses.fields(Options)}
    for name, hint in hints.items():
        text = str(hint)
        assert "Mapping" not in text and "dict" not in text, f"Options.{name} is a free-form {text}"
    with pytest.raises(dataclasses.FrozenInstanceError):
        Options().verified_downstream = True  # type: ignore[misc]


def test_a_link_result_is_true_only_when_the_blob_got_there() -> None:
    assert not LinkResult.NOT_LINKED
    assert all(r for r in LinkResult if r is not LinkResult.NOT_LINKED)
    assert LinkResult.MOUNTED.counted_as == "mounted"
    assert {r.counted_as for r in (LinkResult.HARDLINKED, LinkResult.REFLINKED, LinkResult.COPIED)} == {"linked"}


def test_default_traits_keep_anything_and_traits_are_frozen() -> None:
    assert DEFAULT_TRAITS == StoreTraits(accepts_index=True, manifest_formats=None, rewrites_manifests=False,
                                         sparse_index=SparseIndex.ACCEPTED)
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_TRAITS.accepts_index = False  # type: ignore[misc]


def test_abilities_are_told_apart_by_the_protocols_alone() -> None:
    plain = MemoryStore()
    assert isinstance(plain, Store)
    assert not isinstance(plain, (BlobLinker, Aborter, SparseIndexProbe))
    assert isinstance(LinkingMemoryStore(link_as=LinkResult.MOUNTED), BlobLinker)
    assert isinstance(StagingMemoryStore(), Aborter)
    probing = ProbingMemoryStore(answer=True)
    assert isinstance(probing, SparseIndexProbe) and probing.traits.sparse_index is SparseIndex.PROBE
