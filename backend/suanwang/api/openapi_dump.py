"""Writes the API's OpenAPI schema to a file; the web app's typed client is generated from it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from suanwang.api.app import create_app


def main(path: str) -> None:
    schema = create_app(start_indexer=False).openapi()
    Path(path).write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
