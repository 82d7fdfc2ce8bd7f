"""The transformers model without its weights in memory: the architecture is built with every parameter on PyTorch's
meta device (buffers real: rotary frequencies, position ids), and a module's parameters are read from the
checkpoint's safetensors, in float32, only while the exporter works on that module. Exporting and verifying then
hold one piece of the model at a time (a decoder layer, the vision tower, the embedding table), never the whole:
an 8B checkpoint is exported in the memory of a 2B one.

The checkpoint's tensor names are mapped to the model's as `from_pretrained` maps them (the class's
`_checkpoint_conversion_mapping`, first matching pattern); a tied lm_head reads the embedding table."""

import contextlib
import json
import re
from pathlib import Path

import torch
from safetensors import safe_open
from transformers.integrations.accelerate import init_empty_weights

from .family import Family, Unsupported


class LazyModel:
    def __init__(self, family: Family):
        with init_empty_weights(include_buffers=False):
            model = family.model_class._from_config(family.config, attn_implementation="eager", dtype=torch.float32)
        model.tie_weights()
        self.model = model.eval()
        self.checkpoint = Path(family.checkpoint)
        self.index = self.tensor_index()
        self.prefix = {id(m): name for name, m in self.model.named_modules()}
        self.files: dict[str, object] = {}
        tied = {k for k in getattr(self.model, "_tied_weights_keys", None) or []
                if self.model.config.get_text_config().tie_word_embeddings}
        missing = [k for k, _ in self.model.named_parameters(remove_duplicate=False)
                   if k not in self.index and k not in tied]
        if missing:
            raise Unsupported(f"the checkpoint lacks {len(missing)} of the model's tensors, e.g. {missing[:3]}")
        # A tied parameter (lm_head.weight) reads the tensor it shares: the input embedding's.
        embedding = f"{self.prefix[id(self.model.get_input_embeddings())]}.weight"
        self.tied_to = {k: embedding for k in tied}

    def tensor_index(self) -> dict[str, tuple[str, str]]:
        """model parameter name → (safetensors file, name in that file)."""
        index_file = self.checkpoint / "model.safetensors.index.json"
        if index_file.exists():
            where = json.loads(index_file.read_text())["weight_map"]
        else:
            with safe_open(self.checkpoint / "model.safetensors", "pt") as f:
                where = {k: "model.safetensors" for k in f.keys()}
        mapping = getattr(self.model, "_checkpoint_conversion_mapping", None) or {}
        return {self.model_key(k, mapping): (file, k) for k, file in where.items()}

    @staticmethod
    def model_key(key: str, mapping: dict) -> str:
        for pattern, replacement in mapping.items():
            key, n = re.subn(pattern, replacement, key)
            if n:
                break
        return key

    def tensor(self, key: str) -> torch.Tensor:
        file, name = self.index[key] if key in self.index else self.index[self.tied_to[key]]
        if file not in self.files:
            self.files[file] = safe_open(self.checkpoint / file, "pt")
        return self.files[file].get_tensor(name).to(torch.float32)

    def materialize(self, *modules: torch.nn.Module) -> None:
        for module in modules:
            for sub in module.modules():
                for name, p in list(sub.named_parameters(recurse=False)):
                    if p.is_meta:
                        key = f"{self.prefix[id(sub)]}.{name}".lstrip(".")
                        sub.register_parameter(name, torch.nn.Parameter(self.tensor(key), requires_grad=False))

    @staticmethod
    def release(*modules: torch.nn.Module) -> None:
        """Parameters back to the meta device; buffers stay (they were never read from the checkpoint)."""
        for module in modules:
            for sub in module.modules():
                for name, p in list(sub.named_parameters(recurse=False)):
                    sub.register_parameter(name, torch.nn.Parameter(torch.empty_like(p, device="meta"),
                                                                    requires_grad=False))

    @contextlib.contextmanager
    def loaded(self, *modules: torch.nn.Module):
        """The modules' weights in memory for the duration of the block."""
        self.materialize(*modules)
        try:
            yield
        finally:
            self.release(*modules)

    @contextlib.contextmanager
    def detached(self, *modules: torch.nn.Module):
        """The model without `modules` for the duration of the block (each replaced by an empty module in its
        parent): a graph traced from a wrapper that holds the whole model (InternVL's vision graph holds
        model.model) must not meet the meta-device language model, which the exporter would try to serialise."""
        names = [self.prefix[id(m)] for m in modules]
        for name, module in zip(names, modules):
            parent, _, attr = name.rpartition(".")
            setattr(self.model.get_submodule(parent) if parent else self.model, attr, torch.nn.Module())
        try:
            yield
        finally:
            for name, module in zip(names, modules):
                parent, _, attr = name.rpartition(".")
                setattr(self.model.get_submodule(parent) if parent else self.model, attr, module)

    def outside(self, *language: torch.nn.Module) -> list[torch.nn.Module]:
        """The top-most modules holding parameters that are not under any of `language` (the vision tower and
        projector, whatever the family calls them)."""
        inside = {id(m) for module in language for m in module.modules()}
        picked: list[torch.nn.Module] = []

        def walk(module):
            if id(module) in inside:
                return
            contains = {id(m) for m in module.modules()}
            if not contains & inside:
                if any(True for _ in module.parameters()):
                    picked.append(module)
                return
            if any(True for _ in module.parameters(recurse=False)):
                raise Unsupported(f"{type(module).__name__} holds parameters of its own beside the language model")
            for child in module.children():
                walk(child)

        walk(self.model)
        return picked
