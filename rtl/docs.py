"""``python -m aimc.rtl.docs [--write]``: keep the generated tables of docs/architecture.md
(register map, analogue boundary) equal to their Python sources."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from .. import fixedpoint
from ..config import TileConfig
from . import boundary, regmap

__all__ = ["TABLES", "render", "update"]

DOC = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"

#: Marker name -> function producing the table.
TABLES = {
    # A training tile's map: the inference tile's is the same without the marked rows.
    "regmap": lambda: regmap.markdown_table(regmap.register_map(TileConfig(training=True)),
                                            regmap.windows(TileConfig(training=True))),
    "boundary": boundary.markdown_table,
    "formats": lambda: fixedpoint.markdown_table(TileConfig()),
}


def render(text: str) -> str:
    """``text`` with every ``<!-- BEGIN name -->...<!-- END name -->`` block regenerated."""
    for name, table in TABLES.items():
        pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"docs/architecture.md has no '<!-- BEGIN {name} -->' block")
        text = pattern.sub(lambda m, t=table: m.group(1) + t() + "\n" + m.group(2), text)
    return text


def update(write: bool) -> bool:
    """Return True when the document is up to date (after writing it, with ``write``)."""
    text = DOC.read_text()
    new = render(text)
    if write and new != text:
        DOC.write_text(new)
        return True
    return new == text


if __name__ == "__main__":
    ok = update("--write" in sys.argv)
    status = "up to date" if ok else "tables out of date; run python -m aimc.rtl.docs --write"
    print(f"{DOC}: {status}")
    sys.exit(0 if ok else 1)
