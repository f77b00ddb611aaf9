"""Every malformed file in the corpus (GraphML, peering YAML, scenarios, OpenB traces) is refused with a
one-line error naming the file and saying what was wrong: no traceback, no hang, nothing accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.backend.input.corpus import FILES, Malformed, answer_file


@pytest.mark.parametrize("case", FILES, ids=[f"{c.kind}-{c.name}" for c in FILES])
def test_malformed_file_gets_a_clear_error(case: Malformed, tmp_path: Path) -> None:
    answer = answer_file(case, tmp_path)
    assert answer.verdict == "clear", answer.detail


def test_the_corpus_covers_every_kind_of_file() -> None:
    assert {c.kind for c in FILES} == {"graphml", "peering", "scenario", "trace_pods", "trace_nodes"}
    assert len({c.name for c in FILES}) == len(FILES)  # each case is written to its own file name


def test_a_correct_file_is_not_refused_by_the_judge(tmp_path: Path) -> None:
    """The judge itself: a well-formed scenario is `accepted`, so `clear` answers are not a judging artefact."""
    from tests.backend.input.corpus import scenario

    assert answer_file(Malformed("scenario", "fine.yaml", scenario(), "-"), tmp_path).verdict == "accepted"
