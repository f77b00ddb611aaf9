"""A job's whole output goes into the content store, however many blocks it takes (issue 16)."""

from __future__ import annotations

import json
from typing import Any, cast

from suanwang.content import CHUNK_BYTES, LocalContentStore
from suanwang.lifecycle.follow import FollowJobs
from suanwang.scheduling.base import JobState, JobStatus


def test_an_output_larger_than_one_block_is_stored_whole_and_not_marked_truncated(tmp_path):
    output = bytes(range(256)) * (3 * CHUNK_BYTES // 256) + b"tail"
    (tmp_path / "out").write_bytes(output)
    store = LocalContentStore(tmp_path / "content")
    follow = FollowJobs(cast(Any, None), cast(Any, None), store)
    status = JobStatus(JobState.COMPLETED, exit_code=0, result_path=str(tmp_path / "out"), ran_to_end=True)

    document = json.loads(store.get(follow._result("deal-1", status)))

    assert store.get(document["output"]) == output
    assert (document["output_bytes"], document["output_truncated"]) == (len(output), False)
