"""What a model family answers for the generic exporter. The exporter never names a family: it asks the class that
`families.FAMILIES` maps the checkpoint's `architectures[0]` to."""

import abc
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image


class Unsupported(ValueError):
    """A checkpoint, architecture or option the exporter refuses instead of guessing."""


@dataclass
class Case:
    """A conformance case: one image and an HF-style conversation with one image part."""

    name: str
    image: Image.Image
    messages: list


@dataclass
class Prepared:
    """A case as the family's own processor turns it into model inputs."""

    input_ids: list[int]
    pixel_values: torch.Tensor  # [tiles, 3, H, W] float32, exactly the processor's
    tiles_uint8: list[np.ndarray]  # [H, W, 3] uint8 per tile, before rescale/normalise, in order
    visual_offset: int  # first row that receives a visual embedding
    visual_length: int  # number of visual rows (tiles × tokens_per_tile)


class Family(abc.ABC):
    """One model family. Subclasses refuse what they do not support in `__init__` (raise Unsupported)."""

    family: str  # free text written to the manifest

    def __init__(self, checkpoint: Path):
        self.checkpoint = Path(checkpoint)
        self.config_json = json.loads((self.checkpoint / "config.json").read_text())

    @property
    @abc.abstractmethod
    def text_config(self):
        """The decoder's transformers config (checked by decoder.check_text_config)."""

    @abc.abstractmethod
    def load_model(self) -> torch.nn.Module:
        """The transformers model in float32, eval, eager attention (the reference)."""

    @abc.abstractmethod
    def language_model(self, model) -> tuple[torch.nn.Module, torch.nn.Module]:
        """(decoder with .embed_tokens, .layers, .norm, .rotary_emb; lm_head) inside `model`."""

    @abc.abstractmethod
    def vision_graph(self, model) -> tuple[torch.nn.Module, torch.Tensor]:
        """(module pixel_values → visual_embeds [tiles, tokens_per_tile, hidden]; a sample pixel_values)."""

    @abc.abstractmethod
    def reference_visual(self, model, pixel_values: torch.Tensor) -> torch.Tensor:
        """transformers' own visual embeddings for pixel_values."""

    @abc.abstractmethod
    def reference_inputs(self, model, prepared: Prepared) -> dict:
        """Keyword arguments of transformers' own first forward call (input ids + pixels)."""

    @abc.abstractmethod
    def reference_embeds(self, model, prepared: Prepared) -> torch.Tensor:
        """transformers' own merged input embeddings [1, S, hidden] (text embeddings with the visual rows)."""

    @abc.abstractmethod
    def image_recipe(self) -> dict: ...

    @abc.abstractmethod
    def prompt_recipe(self) -> dict:
        """The manifest's prompt section, with "tokenizer" naming the file `tokenizer_file` is copied to."""

    @abc.abstractmethod
    def tokenizer_file(self) -> Path: ...

    @abc.abstractmethod
    def vision_info(self) -> dict: ...

    @abc.abstractmethod
    def cases(self) -> list[Case]:
        """The conformance cases recorded in fixture.json."""

    @abc.abstractmethod
    def prepare(self, case: Case) -> Prepared: ...
