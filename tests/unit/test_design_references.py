"""Every `docs/design.md §N` cited in the code and the docs names a section that exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORMER_NAME = "DESIGN" + ".md"  # cited for a long time, never in the repository


def test_every_cited_section_exists():
    sections = set(re.findall(r"^## (§\d+)", (ROOT / "docs" / "design.md").read_text(encoding="utf-8"), re.M))
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    cited = {}
    for name in tracked:
        path = ROOT / name
        if not path.is_file() or path.suffix in (".binpb", ".png", ".jpg"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        assert FORMER_NAME not in text, f"{name} cites {FORMER_NAME}: it is docs/design.md"
        for section in re.findall(r"docs/design\.md (§\d+)", text):
            cited.setdefault(section, name)
    assert cited, "nothing cites docs/design.md"
    missing = {s: where for s, where in cited.items() if s not in sections}
    assert not missing, f"sections cited but not in docs/design.md: {missing}"
