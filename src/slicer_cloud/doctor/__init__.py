"""``slicer-cloud doctor``: what each way to work needs on this machine, what is missing, and
the exact command that installs it. Services point here when they cannot start for want of
something (:data:`HINT`)."""

HINT = "Run `slicer-cloud doctor` to see what this machine is missing and how to install it."


def run_doctor(*, as_json: bool = False) -> bool:
    """Print the checks; True when nothing a way to work needs is missing."""
    from slicer_cloud.doctor.checks import MISSING, run_checks
    from slicer_cloud.doctor.report import as_json as json_report
    from slicer_cloud.doctor.report import as_text

    checks = run_checks()
    print(json_report(checks) if as_json else as_text(checks), flush=True)
    return not any(check.status == MISSING for check in checks)
