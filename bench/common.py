"""What the benchmark scripts share: progress lines as they come, and the JSON file each
writes when run from the command line."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["log", "save"]


def log(msg="") -> None:
    """Print a progress line at once (a benchmark's output is often piped)."""
    print(msg, flush=True)


def save(path: Path, doc) -> int:
    """Write ``doc`` to ``path`` as indented JSON, say so, and return 0 (the exit status)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {path}")
    return 0
