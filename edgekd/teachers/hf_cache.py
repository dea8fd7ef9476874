"""Hugging Face model ids (`org/name`) resolved in the local hub cache; nothing is ever downloaded.

The cache is $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub (huggingface_hub's own
order). A model lives in models--org--name/snapshots/<revision>/, and refs/main holds the revision
the last download fetched.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from edgekd.errors import TeacherError

MODEL_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


def hub_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface"
    return Path(home).expanduser() / "hub"


def is_model_id(text: str) -> bool:
    return bool(MODEL_ID.fullmatch(text))


def resolve_model_id(model_id: str) -> Path:
    """The snapshot folder of `model_id` that refs/main names (or the only one there is)."""
    cache = hub_cache()
    repo = cache / ("models--" + model_id.replace("/", "--"))
    snapshots = repo / "snapshots"
    ref = repo / "refs" / "main"
    candidates = sorted(p for p in snapshots.iterdir() if p.is_dir()) if snapshots.is_dir() else []
    if ref.is_file():
        candidates = [snapshots / ref.read_text().strip()]
    found = [p for p in candidates if (p / "config.json").is_file()]
    if len(found) != 1:
        raise TeacherError(f"model {model_id} is not in the Hugging Face cache {cache} (no {repo.name}/snapshots/"
                           f"<rev>/config.json{'; several snapshots and no refs/main' if len(found) > 1 else ''})",
                           f"fetch it on a machine with internet access: `huggingface-cli download {model_id}`, "
                           "then copy the cache here (HF_HUB_CACHE or HF_HOME pick the folder)")
    return found[0]
