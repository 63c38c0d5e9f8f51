"""How ``slicer-cloud doctor`` prints its checks: text for people, JSON for scripts."""

from __future__ import annotations

import json

from slicer_cloud.doctor.checks import MISSING, OK, OPTIONAL, Check

WAYS = ("web viewer", "remote desktop", "notebook", "compute API", "hub", "deployments", "tests")
MARKS = {OK: "[ok]", MISSING: "[missing]", OPTIONAL: "[optional]"}


def readiness(checks: list[Check]) -> dict[str, list[str]]:
    """Each way to work -> the names of its missing requirements (empty: ready)."""
    return {way: [c.name for c in checks if way in c.needed_by and c.status == MISSING] for way in WAYS}


def as_json(checks: list[Check]) -> str:
    ready = readiness(checks)
    return json.dumps(
        {
            "ok": not any(c.status == MISSING for c in checks),
            "checks": [c.as_dict() for c in checks],
            "ways": {way: {"ready": not missing, "missing": missing} for way, missing in ready.items()},
        },
        indent=2,
    )


def as_text(checks: list[Check]) -> str:
    lines = ["slicer-cloud doctor: what each way to work needs on this machine", ""]
    for check in checks:
        lines.append(f"{MARKS[check.status]} {check.name}, used by: {', '.join(check.needed_by)}")
        lines.append(f"    {check.detail}")
        if check.fix and check.status != OK:
            lines.append(f"    fix: {check.fix}")
    ready = readiness(checks)
    lines.append("")
    lines.append("Ready: " + (", ".join(way for way, missing in ready.items() if not missing) or "nothing yet") + ".")
    blocked = {way: missing for way, missing in ready.items() if missing}
    if blocked:
        lines.append("Not ready: " + "; ".join(f"{way} (needs {', '.join(missing)})" for way, missing in blocked.items()) + ".")
        lines.append("Run the fix commands above (as root), then `slicer-cloud doctor` again.")
    return "\n".join(lines)
