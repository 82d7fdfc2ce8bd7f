"""Write a random-weight checkpoint with the REAL dimensions of a published model, without ever building the model:
the architecture is instantiated with its parameters on PyTorch's meta device (no memory), and each submodule in
turn gets real storage, transformers' own initialisation (`_init_weights`, std 0.02), is written to a safetensors
shard in bfloat16 (as the published checkpoints are) and is released. Peak memory is one shard (2 GB), so an 8B
checkpoint is written on a 24 GB machine, and its files, names and index are what `save_pretrained` writes
(checkpoint-format key names: llama.cpp's converter and `from_pretrained` read them as they read the real ones).

Everything except the weights and the tokenizer is what the real folders carry (the dimensions are in CONFIGS,
each with its source). The tokenizer, chat template and processor files are the tiny fixtures' (make_tiny.py,
make_tiny_qwen25vl.py): a small byte-level BPE with the family's special tokens, whose ids all lie inside the real
embedding (the rows above are never used). The weights are random, so the model answers nothing sensible: this is
for memory, size and speed at real scale.

Usage: .venv-export/bin/python model-export/make_real_size.py --model internvl3-8b --out DIR
       (models: see CONFIGS; --list prints them with their parameter counts)
"""

import argparse
import json
import re
import time
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import GenerationConfig, PreTrainedModel
from transformers.integrations.accelerate import init_empty_weights

import real_models

SHARD_BYTES = 2_000_000_000


def checkpoint_key(model: PreTrainedModel, key: str) -> str:
    """The name `save_pretrained` writes for a parameter: the class's `_checkpoint_conversion_mapping` reversed,
    as transformers 4.57's save_pretrained reverses it (first pattern that matches)."""
    for pattern, replacement in (getattr(model, "_checkpoint_conversion_mapping", None) or {}).items():
        reverse = replacement if replacement.startswith("^") else f"^{replacement}"
        original = re.sub(r"\(.*\)", "", pattern.lstrip("^"))
        key, n = re.subn(reverse, original, key)
        if n:
            return key
    return key


def owners(model: PreTrainedModel) -> dict[int, PreTrainedModel]:
    """For each module, the innermost PreTrainedModel containing it: whose `_init_weights` transformers applies."""
    owner: dict[int, PreTrainedModel] = {}

    def walk(module, current):
        current = module if isinstance(module, PreTrainedModel) else current
        owner[id(module)] = current
        for child in module.children():
            walk(child, current)

    walk(model, model)
    return owner


@torch.no_grad()
def initialise(module: torch.nn.Module, owner: PreTrainedModel, generator: torch.Generator) -> None:
    """Real storage for the module's own parameters, then transformers' init for its type. Filled first with
    std-0.02 noise so no parameter that `_init_weights` leaves alone keeps uninitialised memory."""
    for name, p in module.named_parameters(recurse=False):
        real = torch.empty(p.shape, dtype=torch.float32).normal_(0, 0.02, generator=generator)
        module.register_parameter(name, torch.nn.Parameter(real, requires_grad=False))
    owner._init_weights(module)


def write(model_name: str, out: Path, seed: int) -> dict:
    spec = real_models.CONFIGS[model_name]
    tokenizer = spec.build_tokenizer()
    config = spec.build_config(tokenizer)
    with init_empty_weights(include_buffers=False):
        model = spec.model_class(config)
    model.tie_weights()  # from_pretrained ties after loading; a tied lm_head is not written
    owner = owners(model)
    tied = {"lm_head.weight"} if config.get_text_config().tie_word_embeddings else set()
    generator = torch.Generator().manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    shard, shard_bytes, shards, weight_map, total = {}, 0, [], {}, 0

    def flush():
        nonlocal shard, shard_bytes
        if shard:
            name = f"model-{len(shards) + 1:05d}.safetensors"
            save_file(shard, out / name, metadata={"format": "pt"})
            shards.append(name)
            weight_map.update({k: name for k in shard})
            shard, shard_bytes = {}, 0

    for module_name, module in model.named_modules():
        if not list(module.parameters(recurse=False)):
            continue
        initialise(module, owner[id(module)], generator)
        spec.after_init(module_name, module, generator)
        for name, p in module.named_parameters(recurse=False):
            key = f"{module_name}.{name}" if module_name else name
            if key in tied:
                continue
            total += p.numel()
            tensor = p.detach().to(torch.bfloat16).contiguous()
            if shard_bytes + tensor.nbytes > SHARD_BYTES:
                flush()
            shard[checkpoint_key(model, key)] = tensor
            shard_bytes += tensor.nbytes
        module.to("meta")  # release
    flush()
    renamed = {}
    for i, name in enumerate(shards):  # save_pretrained's names: model-0000i-of-0000n.safetensors
        final = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        (out / name).rename(out / final)
        renamed[name] = final
    index = {"metadata": {"total_size": sum((out / f).stat().st_size for f in renamed.values())},
             "weight_map": {k: renamed[v] for k, v in sorted(weight_map.items())}}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    config.dtype = torch.bfloat16
    config.architectures = [spec.model_class.__name__]
    config.save_pretrained(out)
    spec.finish(out, tokenizer)
    ids = tokenizer.convert_tokens_to_ids
    GenerationConfig(eos_token_id=[ids(t) for t in spec.eos_tokens], pad_token_id=ids(spec.eos_tokens[-1]),
                     do_sample=False).save_pretrained(out)
    return {"parameters": total, "shards": len(shards)}


# Weights' bytes per parameter, measured on this project's InternVL3-2B packs (bench/results/real-size-types.md:
# 7.78 / 1.99 / 1.25 GiB on disk for 2.089 B parameters) and the InternVL3-1B int8 pack (1.03); int4's MatMulNBits
# weights take 1.6× their file once onnxruntime's CPU provider has repacked them (2.00 GiB for 2B), float16 is cast
# back to float32 by the CPU provider (gpu-worker/engine/pack-memory.ts).
BYTES_PER_PARAMETER = {"float32": 4.0, "float16": 2.0, "int8": 1.02, "int4": 0.64}
CPU_LOADED = {"float16": 2.0, "int4": 1.6}


def memory_table() -> str:
    """Parameters and weights' memory per type of every model make_real_size knows (counted on the meta device),
    with the KV cache per token (float32 keys and values, all layers) and for a 12-tile image (13 × 256 tokens)."""
    gb = lambda params, dtype, loaded=1.0: f"{params * BYTES_PER_PARAMETER[dtype] * loaded / 2**30:.1f}"
    rows = ["| model | parameters | float32 GiB | float16 GiB (GPU; CPU ×2) | int8 GiB | int4 GiB (disk / CPU) | KV cache "
            "per token | KV of 13 × 256 tokens (12 tiles + thumbnail) |", "|---|---|---|---|---|---|---|---|"]
    counted = [(real_models.parameter_count(spec), name, spec) for name, spec in real_models.CONFIGS.items()]
    for params, name, spec in sorted(counted, key=lambda row: row[0]):
        t = spec.build_config(spec.build_tokenizer()).get_text_config()
        head = getattr(t, "head_dim", None) or t.hidden_size // t.num_attention_heads
        kv = 2 * t.num_hidden_layers * t.num_key_value_heads * head * 4
        rows.append(f"| {name} | {params / 1e9:.2f} B | {gb(params, 'float32')} | {gb(params, 'float16')} | "
                    f"{gb(params, 'int8')} | {gb(params, 'int4')} / {gb(params, 'int4', CPU_LOADED['int4'])} | "
                    f"{kv // 1024} KiB | {kv * 13 * 256 / 2**30:.2f} GiB |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=sorted(real_models.CONFIGS))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--list", action="store_true",
                        help="print the models with their parameters and weights' memory per type (Markdown)")
    args = parser.parse_args()
    if args.list:
        print(memory_table())
        return
    if not args.model or not args.out:
        parser.error("--model and --out are required (or --list)")
    start = time.perf_counter()
    done = write(args.model, args.out, args.seed)
    print(f"{args.model}: {done['parameters'] / 1e9:.3f} B parameters in {done['shards']} shards, written to "
          f"{args.out} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
