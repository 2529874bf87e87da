"""The load benchmark's report as one table: A, B and B/A."""

from __future__ import annotations

from typing import Any


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _triple(figures: dict[str, Any] | None) -> str:
    if not figures:
        return "-"
    return " / ".join(_cell(figures.get(key)) for key in ("p50", "p95", "p99"))


def table(report: dict[str, Any]) -> str:
    """The figures of a report, in rows of (what, A, B, B/A)."""
    a, b, ratio = report["A"], report["B"], report["ratios"]
    fa, fb = a["fixed"], b["fixed"]
    rows = [
        ("", f"A: {a['title']}", f"B: {b['title']}", "B/A"),
        (
            "max calls/s, zero failures",
            f"{_cell(a['max_rate'])} ({a['limited_by']})",
            f"{_cell(b['max_rate'])} ({b['limited_by']})",
            _cell(ratio["max_rate"]),
        ),
        ("fixed load, calls/s x calls", f"{fa['rate']:g} x {fa['calls']}",
         f"{fb['rate']:g} x {fb['calls']}", ""),
        ("failed calls at the fixed load", _cell(fa["failed"]), _cell(fb["failed"]), ""),
        ("post-dial delay ms p50/p95/p99", _triple(fa["pdd_ms"]), _triple(fb["pdd_ms"]),
         _cell(ratio["pdd_p99"])),
        ("key press to agent INVITE ms p50/p95/p99",
         _triple(fa["key_to_agent_invite_ms"]), _triple(fb["key_to_agent_invite_ms"]),
         _cell(ratio["key_to_agent_invite_p99"])),
        ("Asterisk CPU ms per call", _cell(fa["asterisk_cpu_ms_per_call"]),
         _cell(fb["asterisk_cpu_ms_per_call"]), _cell(ratio["asterisk_cpu_ms_per_call"])),
        ("ari_app CPU ms per call", "-", _cell(fb["python_cpu_ms_per_call"]), ""),
        ("ari_app peak memory MB", "-", _cell(round(b["python_peak_memory_mb"] or 0, 1)), ""),
        ("event-loop lag ms p50/p99", "-",
         " / ".join(_cell((fb["event_loop_lag_ms"] or {}).get(k)) for k in ("p50", "p99")), ""),
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in rows]  # fmt: skip
    machine, versions = report["machine"], report["versions"]
    lines.append(
        f"{machine['cores']} cores ({machine['cpu']}); Asterisk {versions['asterisk']}, "
        f"SIPp {versions['sipp']}, Python {versions['python']}, ari_app {versions['ari_app']}, "
        f"event loop {versions.get('event_loop', 'asyncio')}, database {report['database']}"
    )
    met = report["targets"]
    verdicts = {True: "met", False: "MISSED", None: "n/a"}
    lines.append("targets: " + ", ".join(f"{name} {verdicts[ok]}" for name, ok in met.items()))
    return "\n".join(lines)
