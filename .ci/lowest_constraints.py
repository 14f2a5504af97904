"""Print pip constraints pinning every dependency of pyproject.toml to its lower bound.

`make install-lowest` installs with them (`pip install -c`), so CI's Python 3.11 run tests
the oldest stack the ranges admit (anndata 0.12.0, scanpy 1.11.0, pandas 2.2.0, ...). Only
the library's own dependencies are pinned, plus the few packages of their era in
:data:`ERA` (newer releases of those deprecate names the pinned versions call, which
pytest's warnings-as-errors would fail on); everything else and the test tools resolve as
pip chooses. A dependency without a lower bound is an error: the range must say what is
tested.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

#: ``name[extras] >=1.2, <3`` (no markers: pyproject.toml's dependencies have none)
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^]]*\])?\s*(.*)$")


#: transitive dependencies held back to the lower bounds' era: name -> (range, why)
ERA = {
    "pyparsing": ("<3.3", "matplotlib 3.8 calls parseString, which pyparsing 3.3 deprecates"),
    "pyarrow": ("<26", "pyarrow 26 (tiledbsoma's) refuses to import beside NumPy 1.26"),
}


def lowest(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    pins = []
    for line in project["dependencies"]:
        match = REQUIREMENT.match(line)
        specs = [s.strip() for s in match.group(2).split(",")] if match else []
        floors = [s[2:].strip() for s in specs if s.startswith((">=", "==", "~="))]
        if match is None or ";" in line or len(floors) != 1:
            raise SystemExit(f"{pyproject}: {line!r} has no single lower bound (>=)")
        pins.append(f"{match.group(1)}=={floors[0]}")
    return pins + [f"{name}{spec}  # {why}" for name, (spec, why) in ERA.items()]


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    sys.stdout.write("".join(f"{pin}\n" for pin in lowest(root / "pyproject.toml")))
