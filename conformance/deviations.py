"""Known deviations: conformance/deviations.toml, one ``[[deviation]]`` table per entry.

    [[deviation]]
    case = "client.headers.no_responders_*"   # a case name or an fnmatch pattern
    targets = ["pynats"]                      # target names or profiles (go29, go214, other)
    reason = "why this differs, and whether it will be fixed"

A failing case with a matching entry is reported as ``dev`` (with the reason), not FAIL.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 needs the tomli backport
    import tomli as tomllib

DEFAULT_PATH = Path(__file__).resolve().parent / "deviations.toml"


@dataclasses.dataclass(frozen=True)
class Deviation:
    case: str
    targets: tuple[str, ...]
    reason: str

    def matches(self, case: str, target: str, profile: str) -> bool:
        if not fnmatch.fnmatchcase(case, self.case):
            return False
        return not self.targets or target in self.targets or profile in self.targets


def load(path: Path = DEFAULT_PATH) -> list[Deviation]:
    if not path.exists():
        return []
    data = tomllib.loads(path.read_text())
    out: list[Deviation] = []
    for i, entry in enumerate(data.get("deviation", [])):
        try:
            case = str(entry["case"])
            reason = str(entry["reason"]).strip()
        except KeyError as exc:
            raise ValueError(f"{path}: deviation #{i + 1} lacks {exc}") from None
        if not reason:
            raise ValueError(f"{path}: deviation #{i + 1} ({case}) has an empty reason")
        targets = entry.get("targets", [])
        if isinstance(targets, str):
            targets = [targets]
        out.append(Deviation(case, tuple(str(t) for t in targets), reason))
    return out


def find(devs: list[Deviation], case: str, target: str, profile: str) -> Deviation | None:
    for d in devs:
        if d.matches(case, target, profile):
            return d
    return None
