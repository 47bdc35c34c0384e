"""A rule's tests look at the rule's own cards, before cards/bundles.toml folds some of them into one card
(tests/test_bundles.py covers the folding)."""

import pytest

from tests.conftest import evaluator


@pytest.fixture
def evaluate(runtime):
    return evaluator(runtime, bundled=False)
