"""The numbers quoted in the paper are the numbers the code computes now.

``paper/build.py`` regenerates ``paper/generated/numbers.tex``; this test recomputes the macros
(no figures, nothing written, the same seeded in-process runs) and compares them with the
committed file, value by value as formatted strings. A difference means the text quotes a
stale number: run ``.venv/bin/python paper/build.py`` and commit the result.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

PAPER = Path(__file__).resolve().parents[1] / "paper"
_spec = importlib.util.spec_from_file_location("paper_build", PAPER / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)


def test_committed_numbers_equal_the_computed_ones():
    committed = build.read_numbers_tex((PAPER / "generated" / "numbers.tex").read_text(encoding="utf-8"))
    computed = build.numbers()
    assert committed, "no macros in paper/generated/numbers.tex"
    stale = {k: (committed.get(k), v) for k, v in computed.items() if committed.get(k) != v}
    missing = sorted(set(committed) - set(computed))
    assert not stale and not missing, f"stale (committed, computed): {stale}; no longer computed: {missing}"


def test_every_macro_used_in_the_text_is_defined():
    defined = set(build.read_numbers_tex((PAPER / "generated" / "numbers.tex").read_text(encoding="utf-8")))
    text = "".join(p.read_text(encoding="utf-8") for p in (PAPER / "sections").glob("*.tex"))
    used = set(re.findall(r"\\([A-Z][A-Za-z]+)", text))
    assert used <= defined, f"undefined macros: {sorted(used - defined)}"
