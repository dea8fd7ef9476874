"""`load_teacher(spec, data_spec)`: one entry point for every way of naming a teacher.

Teacher specs (nothing is ever downloaded; weights must already be on disk):

    embedded:vl | embedded:invariant | embedded:distinctive
                                  edgekd's built-in teachers for a dataset, built by
                                  edgekd.pretrain.embedded (passed in as `embedded=`)
    DIR with teacher.json         a teacher folder written by edgekd (pretrain, finetune)
    open_clip:ARCH:WEIGHTS        an open_clip model: ARCH a built-in architecture (ViT-B-32) or a
                                  model-config .json, WEIGHTS a .pt/.pth/.bin/.safetensors file
    DIR with open_clip_config.json
                                  an open_clip model in its hub layout (config + weights in one folder)
    DIR with config.json          a Hugging Face CLIPModel or XCLIPModel, or a video model (VideoMAE,
                                  TimeSformer, ViViT, V-JEPA 2: edgekd.teachers.hf_video), save_pretrained layout
    ORG/NAME                      a Hugging Face model id, read from the local hub cache (edgekd.teachers.hf_cache)
    runs/NAME or .../checkpoint.pt
                                  an edgekd student checkpoint (edgekd.teachers.checkpoint_teacher)
    torchvision:NAME:WEIGHTS      a torchvision video model with a local state_dict (same module)

A teacher folder is `teacher.json` + `weights.pt` (a state_dict, loaded with weights_only=True):

    {"format": "edgekd-teacher", "version": 1,
     "type": "embedded-vl" | "finetuned" | ...,   # picks the loader below
     "loader": "edgekd.teachers.MODULE:FUNCTION",  # for types this module does not list
     "config": {...},                              # what the loader needs to rebuild the network
     "data_spec": {...}, "metrics": {...}, "weights_sha256": "...", "edgekd_version": "..."}

A loader is `FUNCTION(folder: Path, meta: dict, data_spec: DataSpec) -> Teacher`; it must live in a
module under edgekd.teachers, so a teacher.json cannot make edgekd import arbitrary code.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from edgekd import __version__
from edgekd.data.spec import DataSpec
from edgekd.errors import TeacherError
from edgekd.io import atomic_path, load_torch_file, read_json, sha256_file, write_json
from edgekd.teachers.hf_cache import is_model_id, resolve_model_id

FOLDER_FORMAT = "edgekd-teacher"
FOLDER_VERSION = 1
META_FILE = "teacher.json"
WEIGHTS_FILE = "weights.pt"
OPEN_CLIP_PREFIX = "open_clip:"
EMBEDDED_PREFIX = "embedded:"
EMBEDDED_NAMES = ("vl", "invariant", "distinctive")
MAX_EMBED_DIM = 8192  # a student projector is Linear(feature_dim, embed_dim); wider is a mistake, not a teacher

LOADERS = {
    "ssl-timebalance": "edgekd.teachers.ssl_teacher:from_folder",  # older folders name teachers.timebalance
    "embedded-vl": "edgekd.teachers.embedded_vl:from_folder",
    "finetuned": "edgekd.teachers.finetuned:from_folder",
}

SPEC_HELP = ("a teacher is embedded:vl|invariant|distinctive, a teacher folder (teacher.json), "
             "open_clip:ARCH:WEIGHTS, an open_clip or Hugging Face model folder or cached model id (ORG/NAME), "
             "an edgekd run/checkpoint.pt, or torchvision:NAME:WEIGHTS")


# -- teacher folders ------------------------------------------------------------------------------

def refuse_existing(out_dir: str | Path, force: bool) -> None:
    """Training never overwrites a folder with content unless told to (checked before any work)."""
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise TeacherError(f"{out} already exists", "pick another output folder, or pass force=True (--force)")


def write_teacher_folder(out_dir: str | Path, *, type: str, config: dict[str, Any], state_dict: dict[str, Any],
                         data_spec: DataSpec, metrics: dict[str, Any] | None = None,
                         loader: str | None = None) -> Path:
    """Write weights.pt then teacher.json (each atomically; the json last, so a crash leaves no
    folder that claims weights it does not have). Returns the folder."""
    import torch

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / WEIGHTS_FILE) as tmp:
        torch.save({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, tmp)
    meta = {"format": FOLDER_FORMAT, "version": FOLDER_VERSION, "type": type,
            "loader": loader or LOADERS.get(type), "config": config, "data_spec": data_spec.to_dict(),
            "metrics": metrics or {}, "weights": WEIGHTS_FILE,
            "weights_sha256": sha256_file(out / WEIGHTS_FILE), "edgekd_version": __version__}
    write_json(out / META_FILE, meta)
    return out


def is_teacher_folder(path: str | Path) -> bool:
    p = Path(path)
    return (p / META_FILE).is_file() or (p.name == META_FILE and p.is_file())


def read_teacher_meta(folder: str | Path) -> tuple[Path, dict[str, Any]]:
    """(folder, parsed teacher.json), validated."""
    folder = Path(folder)
    if folder.name == META_FILE:
        folder = folder.parent
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise TeacherError(f"{folder} is not a teacher folder (no {META_FILE})",
                           "pass a folder written by `edgekd teacher pretrain` or `edgekd teacher finetune`")
    meta = read_json(meta_path, TeacherError, "the file is damaged; re-create the teacher")
    if not isinstance(meta, dict) or meta.get("format") != FOLDER_FORMAT:
        raise TeacherError(f"{meta_path} is not an edgekd teacher description",
                           "pass a folder written by `edgekd teacher pretrain` or `edgekd teacher finetune`")
    if meta.get("version", 0) > FOLDER_VERSION:
        raise TeacherError(f"{meta_path} was written by a newer edgekd ({meta.get('edgekd_version')})",
                           "upgrade edgekd to load it")
    return folder, meta


def read_teacher_weights(folder: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """The folder's state_dict, after checking it is the file teacher.json was written with."""
    path = folder / meta.get("weights", WEIGHTS_FILE)
    if not path.is_file():
        raise TeacherError(f"teacher folder {folder} has no {path.name}", "re-create the teacher; its weights are gone")
    want = meta.get("weights_sha256")
    if want and sha256_file(path) != want:
        raise TeacherError(f"{path} does not match the checksum in {META_FILE} (corrupted or replaced)",
                           "re-create the teacher with `edgekd teacher pretrain`/`finetune`")
    return load_torch_file(path, TeacherError, "a teacher weights file",
                           "re-create the teacher with `edgekd teacher pretrain`/`finetune`")


def load_weights_into(module, state: dict[str, Any], where: Path, strict: bool = True) -> None:
    """load_state_dict with a TeacherError naming the folder when the shapes or names do not fit."""
    try:
        result = module.load_state_dict(state, strict=strict)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        detail = " ".join(line.strip() for line in first[1:3]) or first[0]
        raise TeacherError(f"weights in {where} do not match the teacher architecture: {detail[:300]}",
                           f"the {META_FILE} config must describe the network its weights came from") from e
    return result


def load_teacher_folder(folder: str | Path, data_spec: DataSpec):
    folder, meta = read_teacher_meta(folder)
    target = LOADERS.get(meta.get("type")) or meta.get("loader")
    if not target or not str(target).startswith("edgekd.teachers.") or ":" not in target:
        raise TeacherError(f"{folder / META_FILE}: unknown teacher type {meta.get('type')!r}",
                           "known types: " + ", ".join(LOADERS) + " (or a loader in edgekd.teachers)")
    module_name, func_name = target.split(":", 1)
    try:
        loader = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as e:
        raise TeacherError(f"{folder / META_FILE}: its loader {target} is not available in this edgekd",
                           "upgrade edgekd to the version that wrote this teacher") from e
    return loader(folder, meta, data_spec)


# -- the dispatcher -------------------------------------------------------------------------------

def _split_open_clip(spec: str) -> tuple[str, str]:
    rest = spec[len(OPEN_CLIP_PREFIX):]
    arch, sep, weights = rest.partition(":")
    if not sep or not arch or not weights:
        raise TeacherError(f"teacher spec {spec!r} is incomplete",
                           "write open_clip:ARCH:WEIGHTS, e.g. open_clip:ViT-B-32:models/vit_b_32.pt")
    return arch, weights


def _embedded(name: str, build):
    """A built-in teacher: made per dataset and split by the caller's `build(name)`
    (edgekd.pretrain.embedded.load_embedded); loading alone never trains one."""
    if name not in EMBEDDED_NAMES:
        raise TeacherError(f"unknown embedded teacher {EMBEDDED_PREFIX + name!r}",
                           "choose " + ", ".join(EMBEDDED_PREFIX + n for n in EMBEDDED_NAMES))
    if build is None:
        raise TeacherError(f"{EMBEDDED_PREFIX + name} is built for a dataset and split, not read from a folder",
                           "pass it to `edgekd distill` or an `edgekd teacher` command, which build it, "
                           "or call edgekd.pretrain.embedded.load_embedded")
    return build(name)


def load_teacher(spec: str | Path, data_spec: DataSpec, *, embedded=None, probe: bool = True, **opts):
    """Load the teacher named by `spec` (see the module docstring) for batches shaped by `data_spec`.

    embedded: `build(name) -> Teacher` for embedded:NAME specs (edgekd.pretrain.embedded builds them
    for a dataset and split); without it those specs are refused.
    opts go to CLIP-style teachers (pooling="mean"|"max", num_frames=N).
    probe: run one zero clip through the teacher to check its embedding width.
    """
    text = str(spec).strip()
    path = Path(text).expanduser()
    if text.startswith(EMBEDDED_PREFIX):
        teacher = _embedded(text[len(EMBEDDED_PREFIX):], embedded)
    elif text.startswith(OPEN_CLIP_PREFIX):
        from edgekd.teachers.vl import load_open_clip

        teacher = load_open_clip(*_split_open_clip(text), data_spec, **opts)
    elif text.startswith(("hf-hub:", "hf:", "http://", "https://")):
        raise TeacherError(f"teacher {text!r} names a remote model; edgekd downloads nothing",
                           "download it on a machine with internet access, copy the folder here and pass its path")
    elif text.startswith("torchvision:") or path.suffix in (".pt", ".pth") or (path / "checkpoint.pt").is_file():
        from edgekd.teachers.checkpoint_teacher import load_checkpoint_teacher

        if not text.startswith("torchvision:") and not path.exists():
            raise TeacherError(f"no teacher at {path}", SPEC_HELP)
        try:
            teacher = load_checkpoint_teacher(text, data_spec)
        except TeacherError as e:
            if path.is_file() and "not an edgekd" in e.message:  # a bare CLIP state_dict, most likely
                raise TeacherError(e.message, "for an open_clip checkpoint write open_clip:ARCH:"
                                   f"{path}; otherwise pass a checkpoint.pt written by `edgekd distill`") from e
            raise
    elif path.is_dir() or path.name == META_FILE:
        teacher = _load_dir(path, data_spec, **opts)
    elif path.exists():
        raise TeacherError(f"{path} is not a teacher edgekd can read", SPEC_HELP)
    elif is_model_id(text):
        teacher = _load_dir(_cached_model(text), data_spec, **opts)
    else:
        raise TeacherError(f"no teacher at {path}" if ("/" in text or path.suffix) else
                           f"unknown teacher {text!r}", SPEC_HELP)
    if not getattr(teacher, "source", None):
        teacher.source = text
    check_teacher(teacher, data_spec, probe=probe)
    return teacher


def _cached_model(model_id: str) -> Path:
    """A Hugging Face model id: its snapshot folder in the local hub cache."""
    try:
        return resolve_model_id(model_id)
    except TeacherError as e:
        raise TeacherError(f"no folder {model_id} here, and {e.message}", e.hint) from e


def _load_dir(path: Path, data_spec: DataSpec, **opts):
    if is_teacher_folder(path):
        return load_teacher_folder(path, data_spec)
    if (path / "open_clip_config.json").is_file():
        from edgekd.teachers.vl import load_open_clip_dir

        return load_open_clip_dir(path, data_spec, **opts)
    if (path / "config.json").is_file():
        from edgekd.teachers.vl import load_hf_dir

        return load_hf_dir(path, data_spec, **opts)
    raise TeacherError(f"{path} holds no teacher (no teacher.json, open_clip_config.json, config.json "
                       "or checkpoint.pt)", SPEC_HELP)


def check_teacher(teacher, data_spec: DataSpec, probe: bool = True) -> None:
    """The embedding width must be usable by a student projector (Linear(feature_dim, embed_dim)),
    and, with probe=True, what embed() returns for one clip must have that width."""
    dim = getattr(teacher, "embed_dim", None)
    name = getattr(teacher, "source", type(teacher).__name__)
    if not isinstance(dim, int) or isinstance(dim, bool) or not 1 <= dim <= MAX_EMBED_DIM:
        raise TeacherError(f"teacher {name} reports embedding width {dim!r}; a student projector needs "
                           f"an integer in 1..{MAX_EMBED_DIM}", "use the teacher's joint-space (projected) embedding")
    if not probe:
        return
    import torch

    device = next(iter(teacher.parameters()), torch.zeros(0)).device
    with torch.no_grad():
        out = teacher.embed(torch.zeros(data_spec.input_shape(1), device=device))
    if tuple(out.shape) != (1, dim):
        raise TeacherError(f"teacher {name} declares embed_dim={dim} but embed() returns shape {tuple(out.shape)}",
                           "its embedding width is inconsistent; check the model config")
    if not torch.isfinite(out).all():
        raise TeacherError(f"teacher {name} returns non-finite embeddings", "its weights are damaged")
