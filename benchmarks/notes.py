"""Lab notes: docs/notes/benchmarks.md holds the hand-written history of the benchmarks and the
tables of one-off studies (held_out.py, breakdown.py), each between markers that the study
rewrites. BENCHMARKS.md itself is the suite's alone (render.py)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.provenance import ROOT

NOTES = ROOT / "docs" / "notes" / "benchmarks.md"


def write_section(path: Path, section: str, body: str) -> None:
    """Replace the text between section ``section``'s markers in ``path`` (or append it)."""
    begin, end = f"<!-- bench:{section}:begin -->", f"<!-- bench:{section}:end -->"
    text = path.read_text() if path.exists() else ""
    block = f"{begin}\n{body}\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + f"\n\n## {section}\n\n{block}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
