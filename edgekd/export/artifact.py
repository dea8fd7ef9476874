"""The export folder's table: one row per artifact with its parity and accuracy figures (artifact.json).

The contract itself (file names, artifact.json, ONNX metadata) is edgekd.runtime.artifact.
"""

from __future__ import annotations

from typing import Any

def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def render_table(art: dict[str, Any]):
    """A rich Table: one row per artifact with its parity (vs PyTorch) and accuracy figures."""
    from rich import box
    from rich.table import Table

    clips = art.get("parity_inputs", {}).get("clips", {})
    t = Table(title=f"{art['student']['name']}: parity vs PyTorch on {clips.get('clips', '?')} {clips.get('split', '')} "
                    f"clips ({clips.get('source', '?')}) + {art.get('parity_inputs', {}).get('noise', 0)} noise inputs",
              title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
    # max|Δ| / cos / top1= : vs PyTorch on the parity clips; acc: top-1 accuracy on the eval split
    for col in ("file", "prec", "MB", "max|Δ|", "cos", "top1=", "acc", "parity"):
        t.add_column(col, justify="left" if col in ("file", "prec", "parity") else "right", no_wrap=True)
    for a in art["artifacts"]:
        p = a.get("parity") or {}
        c = p.get("clips") or {}
        acc = (a.get("accuracy") or {}).get("top1")
        if "parity" in a:
            status = "[green]ok[/green]" if p.get("passed") else "[red]FAILED[/red]"
        else:
            status = f"[yellow]{a.get('status', '')}[/yellow]"
        t.add_row(a["file"], a["precision"], _fmt(a["bytes"] / 1e6 if a.get("bytes") else None, ".2f"),
                  _fmt(c.get("max_abs"), ".1e"), _fmt(c.get("cosine_min"), ".4f"),
                  _fmt(c.get("top1_agreement"), ".2f"), _fmt(acc, ".3f"), status)
    return t
