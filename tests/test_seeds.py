"""The seed documents the tests quote are the project's copy of the specification (docs/seeds/)."""

from __future__ import annotations

import pytest

from tests.conftest import SEEDS, SHARED_SEEDS, require_seeds


def test_the_five_source_documents_are_in_the_repository():
    require_seeds()
    assert sorted(p.name[:3] for p in SEEDS.glob("*.txt")) == ["000", "001", "002", "003", "004"]


def test_the_copy_is_the_shared_specification_word_for_word():
    if not SHARED_SEEDS.is_dir():
        pytest.skip(f"no {SHARED_SEEDS} beside the project to compare the copy with")
    assert {p.name: p.read_bytes() for p in SEEDS.glob("*.txt")} == {
        p.name: p.read_bytes() for p in SHARED_SEEDS.glob("*.txt")
    }
