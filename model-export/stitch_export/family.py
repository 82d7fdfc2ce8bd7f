"""What a model family answers for the generic exporter. The exporter never names a family: it asks the class that
`families.FAMILIES` maps the checkpoint's `architectures[0]` to."""

import abc
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import GenerationConfig


class Unsupported(ValueError):
    """A checkpoint, architecture or option the exporter refuses instead of guessing."""


@dataclass
class Case:
    """A conformance case: one image and an HF-style conversation with one image part."""

    name: str
    image: Image.Image
    messages: list


def user_asks(text: str) -> dict:
    """A user turn: the image, then the question (as HF chat messages carry it)."""
    return {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}


def with_earlier_turns(text: str) -> list:
    """A conversation with a system message and an earlier exchange before the question: the chat template renders
    all of it, and the visual span sits after that text."""
    say = lambda role, t: {"role": role, "content": [{"type": "text", "text": t}]}
    return [say("system", "You are a helpful assistant."), say("user", "Hello!"),
            say("assistant", "Hello! How can I help?"), user_asks(text)]


@dataclass
class Prepared:
    """A case as the family's own processor turns it into model inputs."""

    input_ids: list[int]
    pixel_values: torch.Tensor  # [tiles, 3, H, W] (or [patches, C·t·p·p] for smart_resize) float32, the processor's
    tiles_uint8: list[np.ndarray]  # [H, W, 3] uint8 per tile (smart_resize: the one resized image), before rescale
    visual_offset: int  # first row that receives a visual embedding
    visual_length: int  # number of visual rows (tiles × tokens_per_tile)
    # The decoder's prefill positions as the engine computes them: [S] (1d) or [3, S] (mrope); None: 0..S-1.
    positions: np.ndarray | None = None
    # The vision graph's feeds (numpy) when there is more than pixel_values (smart_resize's host-computed inputs).
    vision_feeds: dict | None = None
    # Everything else the family records in the fixture case (grid_thw, expected host-computed inputs …).
    fixture: dict = field(default_factory=dict)

    def prefill_positions(self) -> np.ndarray:
        return self.positions if self.positions is not None else np.arange(len(self.input_ids), dtype=np.int64)

    def feeds(self) -> dict:
        return self.vision_feeds if self.vision_feeds is not None else {"pixel_values": self.pixel_values.numpy()}


def framed_chat_template(tokenizer, template: str) -> str:
    """The chat template as the engine must render it. The engine encodes the rendered text without the
    tokenizer's own framing (it encodes the text around the image separately); a tokenizer that puts BOS before
    every text (Llama's add_bos_token: InternVL2.5's InternLM2 tokenizer) gets it written into the template instead,
    which gives the ids transformers' processor gives. Any other framing is refused."""
    framed, bare = tokenizer("x").input_ids, tokenizer("x", add_special_tokens=False).input_ids
    if framed == bare:
        return template
    if tokenizer.bos_token is not None and framed == [tokenizer.bos_token_id, *bare]:
        return "{{ bos_token }}" + template
    raise Unsupported(f"the tokenizer frames text as {framed} around {bare} (only nothing, or BOS in front)")


class Family(abc.ABC):
    """One model family. Subclasses refuse what they do not support in `__init__` (raise Unsupported)."""

    family: str  # free text written to the manifest

    def __init__(self, checkpoint: Path):
        self.checkpoint = Path(checkpoint)
        self.config_json = json.loads((self.checkpoint / "config.json").read_text())
        if "architectures" not in self.config_json:  # saved by transformers 4.57 inside text_config (Qwen2.5-VL)
            self.config_json["architectures"] = (self.config_json.get("text_config") or {}).get("architectures")

    # The transformers class of the checkpoint; subclasses set `self.config` (its config) in `__init__`.
    model_class: type

    @property
    def text_config(self):
        """The decoder's transformers config (checked by decoder.check_text_config)."""
        return self.config.text_config

    def load_model(self) -> torch.nn.Module:
        """The transformers model in float32, eval, eager attention (the reference)."""
        model = self.model_class.from_pretrained(self.checkpoint, attn_implementation="eager", dtype=torch.float32)
        return model.eval()

    def generation_eos(self) -> list[int]:
        """The stop ids: generation_config.json's eos_token_id (InternVL2.5-hf: <|im_end|>, while its text config
        says </s>), else the text config's."""
        try:
            eos = GenerationConfig.from_pretrained(self.checkpoint).eos_token_id
        except OSError:
            eos = self.config.text_config.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        if not eos:
            raise Unsupported("no eos_token_id in generation_config.json or the text config")
        return eos

    def language_model(self, model) -> tuple[torch.nn.Module, torch.nn.Module]:
        """(decoder with .embed_tokens, .layers, .norm, .rotary_emb; lm_head) inside `model`: where both LLaVA-style
        classes (InternVL, Qwen2.5-VL) keep them; a family laid out otherwise overrides this."""
        return model.model.language_model, model.lm_head

    @abc.abstractmethod
    def vision_graph(self, model) -> tuple[torch.nn.Module, torch.Tensor | tuple]:
        """(module pixel_values → visual_embeds [tiles, tokens_per_tile, hidden]; a sample pixel_values), or for a
        graph with more inputs, the sample as a tuple in `vision_io()`'s input order."""

    def vision_io(self) -> tuple[list[str], dict]:
        """The vision graph's input names and dynamic axes (outputs: visual_embeds)."""
        return ["pixel_values"], {"pixel_values": {0: "tiles"}, "visual_embeds": {0: "tiles"}}

    @abc.abstractmethod
    def reference_visual(self, model, prepared: Prepared) -> torch.Tensor:
        """transformers' own visual embeddings for the prepared case's pixels."""

    def rebuilt_pixel_values(self, prepared: Prepared, recipe: dict) -> np.ndarray:
        """pixel_values rebuilt from the uint8 images as the engine does it (default: tiles, NCHW)."""
        from .verify import rebuild_pixels
        return rebuild_pixels(prepared.tiles_uint8, recipe)

    def fixture_image(self, prepared: Prepared) -> dict:
        """The fixture case's fields about the processed image (default: the tiles as PNG)."""
        from .verify import png_base64
        return {"tiles_png_base64": [png_base64(t) for t in prepared.tiles_uint8]}

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
