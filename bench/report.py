"""Turn a results dict into bench/RESULTS.md and a PNG (one panel per workload, bars per peer)."""

from __future__ import annotations

import re
import statistics

from .peers import RESULTS
from .peers import SENDFILE as _SENDFILE_PEER

OURS = "catzilla"
CEILING = "ceiling"
SENDFILE = _SENDFILE_PEER.name


def _med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _fmt(v, digits=0):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"


def _ratio(v, ref):
    return f"{v / ref:.2f}×" if v and ref else "–"


def _errors(runs) -> str:
    out = []
    for r in runs:
        if r.get("error"):
            out.append(r["error"][:60])
        if r.get("socket_errors"):
            kinds = re.findall(r"(connect|read|write|timeout) (\d+)",
                               r.get("socket_error_detail", ""))
            detail = ", ".join(f"{kind} {n}" for kind, n in kinds if n != "0")
            out.append(f"{r['socket_errors']} socket errors ({detail})" if detail
                       else f"{r['socket_errors']} socket errors")
        if r.get("non2xx"):
            out.append(f"{r['non2xx']} non-2xx")
    return "⚠ " + "; ".join(dict.fromkeys(out)) if out else ""


def http_summary(case) -> dict[str, dict]:
    out = {}
    for peer, slot in case["results"].items():
        runs = slot["runs"]
        rps = [r["rps"] for r in runs if r["requests"]]
        out[peer] = {"na": slot.get("na"), "rps": _med(rps), "min": min(rps, default=None),
                     "max": max(rps, default=None), "n": len(rps),
                     "cpu": _med([r["cpu_us_per_req"] for r in runs]),
                     "p50": _med([r["p50_ms"] for r in runs]),
                     "p99": _med([r["p99_ms"] for r in runs]), "errors": _errors(runs),
                     "client": _med([r.get("client_cpu_pct") for r in runs])}
    return out


def _label(res, peer):
    return res["peers"].get(peer, {}).get("label", peer)


def markdown(res: dict, json_name: str, png_name: str | None) -> str:
    m = res["meta"]
    mc = m["machine"]
    lines = [
        "# Benchmark results", "",
        f"- date: {m['date']}",
        f"- command: `{m['command']}`",
        f"- machine: {mc['nproc']} cores, {mc['cpu']}, Python {mc['python']}, "
        f"kernel {mc['kernel']}, {mc.get('wrk') or 'no wrk'}",
        f"- {m['runs']} run(s) per case, {m['duration']:g} s each; median shown, min–max beside it",
        f"- raw data: `results/{json_name}`" + (f"; plot: [results/{png_name}](results/{png_name})"
                                                 if png_name else ""),
    ]
    if m.get("ceiling"):
        lines.append(f"- ceiling server build: {m['ceiling']}")
    if m.get("loadgen"):
        lines.append(f"- streaming load generator: {m['loadgen']}")
    lines += ["", "Ratios: a peer's figure divided by catzilla's (req/s: below 1× means slower "
              "than catzilla; CPU/request: above 1× means more CPU per request). wrk -t1 takes one "
              "of the cores; CPU per request is user+sys of the server's processes from /proc "
              "divided by completed requests. wrk CPU % is the client's user+sys over the run, as "
              "a share of one core: where it is near 100% (Connection: close, where each request "
              "costs the client a connect()), the client capped req/s and CPU µs/req is the "
              "figure that compares servers. Peers take turns in a rotated order each run. "
              "Socket errors are wrk's, by kind; a read error is a connection the server reset "
              "(ECONNRESET), which also spares the client an orderly close.", "",
              "## Peers", "",
              "| peer | packages (pinned) | status |", "|---|---|---|"]
    for name, info in res["peers"].items():
        pk = ", ".join(info.get("packages") or []) or "current interpreter"
        vers = info.get("versions") or {}
        if name in (OURS, CEILING) and vers:
            pk += " (" + ", ".join(f"{k} {v}" for k, v in vers.items() if v) + ")"
        status = ("❌ " + info["error"].replace("|", "/")) if info.get("error") else "ok"
        if info.get("note"):
            status += f" ({info['note']})"
        lines.append(f"| {info['label']} | {pk} | {status} |")

    if res["http"]:
        lines += ["", "## HTTP (wrk -t1)"]
    for _key, case in res["http"].items():
        s = http_summary(case)
        ref, ceil = s.get(OURS, {}), s.get(CEILING, {})
        mode = "keep-alive" if case["keepalive"] else "Connection: close"
        lines += ["", f"### {case['title']} — {case['connections']} connections, {mode}", "",
                  "| peer | req/s | min–max | ×catzilla | ×ceiling | CPU µs/req | CPU ×catzilla "
                  "| p50 ms | p99 ms | wrk CPU % | flags |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for peer, v in sorted(s.items(), key=lambda kv: -(kv[1]["rps"] or 0)):
            if v["na"] or not v["rps"]:
                lines.append(f"| {_label(res, peer)} | n/a | | | | | | | | | "
                             f"{(v['na'] or v['errors'] or 'no result').replace('|', '/')} |")
                continue
            lines.append(
                f"| {_label(res, peer)} | {_fmt(v['rps'])} | {_fmt(v['min'])}–{_fmt(v['max'])} | "
                f"{_ratio(v['rps'], ref.get('rps'))} | {_ratio(v['rps'], ceil.get('rps'))} | "
                f"{_fmt(v['cpu'], 1)} | {_ratio(v['cpu'], ref.get('cpu'))} | {_fmt(v['p50'], 2)} | "
                f"{_fmt(v['p99'], 2)} | {_fmt(v['client'])} | {v['errors'].replace('|', '/')} |")

    if res["memory"]:
        lines += ["", "## Memory (server RSS, MiB, median over runs)", "",
                  "| peer | idle after start | end of load (max over cases) | 1 s after load |",
                  "|---|---:|---:|---:|"]
        for peer, mem in res["memory"].items():
            vals = [_med(mem[k]) for k in ("idle", "end_of_load", "after")]
            lines.append(f"| {_label(res, peer)} | " +
                         " | ".join(_fmt(v / 2**20, 1) if v else "–" for v in vals) + " |")

    for _name, wl in res["streaming"].items():
        lines += ["", f"## {wl['title']}", "", wl.get("description", ""), ""]
        cols = wl.get("columns", [])
        lines += [f"| peer | {wl['unit']} | min–max | ×catzilla | " +
                  " | ".join(c[1] for c in cols) + " | flags |",
                  "|---|---:|---:|---:|" + "---:|" * len(cols) + "---|"]
        ref = _med([r.get("value") for r in wl["results"].get(OURS, {}).get("runs", [])])
        # downloads: each figure against plain sendfile of the same file in the same run
        ceil = _med([r.get("value") for r in wl["results"].get(SENDFILE, {}).get("runs", [])])
        if ceil:
            lines[-2] = lines[-2].replace(" | ×catzilla | ", " | ×catzilla | ×sendfile | ")
            lines[-1] = lines[-1].replace("---:|", "---:|---:|", 1)
        rows = []
        for peer, slot in wl["results"].items():
            vals = [r["value"] for r in slot.get("runs", []) if r.get("value") is not None]
            rows.append((peer, slot, vals, _med(vals)))
        for peer, slot, vals, med in sorted(rows, key=lambda t: -(t[3] or 0)):
            if slot.get("na") or med is None:
                lines.append(f"| {_label(res, peer)} | n/a | | | " + "| " * bool(ceil) +
                             " | " * len(cols) +
                             f"{slot.get('na') or _errors(slot.get('runs', [])) or 'no result'}"
                             " |")
                continue
            extra = [_fmt(_med([r.get(c[0]) for r in slot["runs"]]), c[2]) for c in cols]
            lines.append(f"| {_label(res, peer)} | {_fmt(med, wl.get('digits', 0))} | "
                         f"{_fmt(min(vals), wl.get('digits', 0))}–"
                         f"{_fmt(max(vals), wl.get('digits', 0))} | {_ratio(med, ref)} | " +
                         (f"{_ratio(med, ceil)} | " if ceil else "") +
                         " | ".join(extra) + f" | {_errors(slot['runs'])} |")
    side = sorted(RESULTS.glob("side-*.md"))
    if side:
        lines += ["", "## Other measurements (separate commands)"]
        for path in side:
            lines += ["", path.read_text().strip()]
    return "\n".join(lines) + "\n"


def plot(res: dict, path):
    """One panel per workload, a bar per peer. Returns the path, or None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing (pip install matplotlib): no plot")
        return None
    panels = []
    for _key, case in res["http"].items():
        s = http_summary(case)
        mode = "keep-alive" if case["keepalive"] else "close"
        panels.append((f"{case['title']}\n{case['connections']} conns, {mode}", "req/s",
                       {_label(res, p): v["rps"] for p, v in s.items() if v["rps"]}))
    for _name, wl in res["streaming"].items():
        panels.append((wl["title"], wl["unit"], {
            _label(res, p): _med([r["value"] for r in slot.get("runs", []) if "value" in r])
            for p, slot in wl["results"].items()}))
    panels = [(t, u, {k: v for k, v in d.items() if v}) for t, u, d in panels]
    panels = [p for p in panels if p[2]]
    if not panels:
        return None
    cols = 4 if len(panels) > 6 else min(3, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    for ax, (title, unit, data) in zip(axes.flat, panels, strict=False):
        names = sorted(data, key=data.get)
        colors = ["tab:red" if n.startswith("catzilla (") else
                  "tab:gray" if n.startswith(("ceiling", "plain")) else "tab:blue" for n in names]
        ax.barh(names, [data[n] for n in names], color=colors)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(unit, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"{res['meta']['date']} — {res['meta']['command']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
