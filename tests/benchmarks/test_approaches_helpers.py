"""The side-by-side benchmark's arithmetic: rates and sizes per frame never divide by zero, and a
missing figure reads "n/a" in the table instead of a made-up 0."""

from __future__ import annotations

from benchmarks.approaches import Row, fmt, per_frame, rate, table


def test_rates_and_sizes_handle_empty_windows():
    assert rate(30, 2.0) == 15.0
    assert rate(0, 2.0) == 0.0 and rate(5, 0.0) == 0.0
    assert per_frame(8000, 4) == 2000.0
    assert per_frame(8000, 0) is None


def test_missing_figures_read_na_and_failures_keep_their_reason():
    assert fmt(None, "{:.1f}") == "n/a" and fmt(1.26, "{:.1f}") == "1.3"
    text = table([Row("compute API (PNG per request)", "ct256", first_image_s=3.0, slice_bytes_per_frame=2048),
                  Row("desktop (selkies)", "ct512", note="failed: RuntimeError: x")])  # fmt: skip
    lines = text.splitlines()
    assert lines[2].startswith("| compute API (PNG per request) | ct256 | 3.0 | n/a | 2.0 |")
    assert "| n/a |" in lines[3] and lines[3].endswith("failed: RuntimeError: x |")
