"""Capture module inputs/outputs with forward hooks and write them as safetensors.

File layout (what the Rust tests read):
  tests/fixtures/modules/<model>.<module path>[.<case>].safetensors
Tensor names inside a file:
  arg0, arg1, ...        positional arguments
  kw.<name>              keyword arguments
  out                    a single tensor output
  out.0, out.1.0, ...    tuple/list outputs, flattened depth first
  out.<field>            ModelOutput fields (e.g. out.sample, out.last_hidden_state)
Containers are flattened the same way for inputs (kw.res_hidden_states_tuple.0, ...).
Everything that is not a tensor (num_frames, upsample_size, None, flags) goes into the
safetensors __metadata__ string map under the same name, JSON-encoded. An input that reached
the module in a non-contiguous layout (channels_last inside the VAE) is stored contiguous and
its strides are recorded as "strides.<name>" (JSON list). The map also holds
"model", "module", "class", "case" and "weights" (the weights folder under tests/fixtures).

The writer is our own (not safetensors.torch.save_file) so that the header, including the
metadata map, is written in a fixed order: runs of the script are byte-identical.
"""

from __future__ import annotations

import json
import struct
import sys
from collections import OrderedDict
from pathlib import Path

import torch

assert sys.byteorder == "little", "the safetensors writer assumes a little-endian host"

_ST_DTYPES = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.bool: "BOOL",
    torch.uint8: "U8",
}


def _contains_tensor(v) -> bool:
    if torch.is_tensor(v):
        return True
    if isinstance(v, dict):
        return any(_contains_tensor(x) for x in v.values())
    if isinstance(v, (tuple, list)) and not isinstance(v, torch.Size):
        return any(_contains_tensor(x) for x in v)
    return False


def jsonable(v):
    """A JSON-encodable picture of a non-tensor value."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, torch.Size):
        return [int(x) for x in v]
    if isinstance(v, (tuple, list)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, torch.dtype):
        return str(v)
    return repr(v)


def flatten(prefix: str, v, tensors: "OrderedDict[str, torch.Tensor]", meta: dict) -> None:
    """Flatten v into tensors (name -> tensor) and meta (name -> JSON string)."""
    if torch.is_tensor(v):
        tensors[prefix] = v
    elif _contains_tensor(v):
        if isinstance(v, dict):  # includes diffusers BaseOutput / transformers ModelOutput
            for k, x in v.items():
                flatten(f"{prefix}.{k}", x, tensors, meta)
        else:
            for i, x in enumerate(v):
                flatten(f"{prefix}.{i}", x, tensors, meta)
    else:
        meta[prefix] = json.dumps(jsonable(v), sort_keys=True)


def _to_storable(t: torch.Tensor) -> torch.Tensor:
    t = t.detach().cpu()
    if t.is_floating_point():
        t = t.to(torch.float32)  # every dump is float32 (f16 runs are upcast before running)
    return t.contiguous()


def write_safetensors(path: Path, tensors: "OrderedDict[str, torch.Tensor]", metadata: dict) -> None:
    """Deterministic safetensors writer: __metadata__ first, then tensors sorted by name."""
    names = sorted(tensors)
    header: "OrderedDict[str, object]" = OrderedDict()
    if metadata:
        header["__metadata__"] = OrderedDict((k, str(metadata[k])) for k in sorted(metadata))
    blobs = []
    offset = 0
    for name in names:
        t = _to_storable(tensors[name])
        dt = _ST_DTYPES[t.dtype]
        raw = t.numpy().tobytes()  # little-endian host (checked at import)
        header[name] = OrderedDict(
            [("dtype", dt), ("shape", [int(s) for s in t.shape]), ("data_offsets", [offset, offset + len(raw)])]
        )
        blobs.append(raw)
        offset += len(raw)
    hjson = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)  # safetensors pads the header to 8 bytes
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


def check_roundtrip(path: Path, tensors: "OrderedDict[str, torch.Tensor]", metadata: dict) -> None:
    """Read a file back with the official safetensors library and compare."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        assert set(f.keys()) == set(tensors), (path, f.keys())
        md = f.metadata() or {}
        assert md == {k: str(v) for k, v in metadata.items()}, path
        for k in f.keys():
            a = f.get_tensor(k)
            b = _to_storable(tensors[k])
            assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), (path, k)


class Dumper:
    """Register pre/post hooks on named submodules; each call becomes one dump file.

    Inputs are cloned in the pre-hook (so in-place ops later cannot alter them), outputs in
    the post-hook. A module path may be hooked for exactly one call per case unless
    allow_repeat is given (then calls get suffixes .call0, .call1, ...).
    """

    def __init__(self, out_dir: Path, manifest: list, weights: dict):
        self.out_dir = out_dir
        self.manifest = manifest
        self.weights = weights  # model name -> weights folder, relative to tests/fixtures

    def capture(self, model_name: str, root: torch.nn.Module, paths, case: str | None, run):
        """Hook root.get_submodule(p) for p in paths ("" = root, dumped as "full"), call run()."""
        records: dict = {}
        handles = []
        for p in paths:
            mod = root if p == "" else root.get_submodule(p)
            key = p if p else "full"

            def pre(m, args, kwargs, key=key):
                tensors: "OrderedDict[str, torch.Tensor]" = OrderedDict()
                meta: dict = {}
                for i, a in enumerate(args):
                    flatten(f"arg{i}", a, tensors, meta)
                for k, a in kwargs.items():
                    flatten(f"kw.{k}", a, tensors, meta)
                for k, v in tensors.items():
                    # e.g. channels_last activations inside the VAE: conv kernels round differently
                    # on them, so a bit-exact replay needs the layout (recorded as metadata)
                    if not v.is_contiguous() and 0 not in v.stride():
                        meta[f"strides.{k}"] = json.dumps(list(v.stride()))
                tensors = OrderedDict((k, v.detach().clone()) for k, v in tensors.items())
                records.setdefault(key, []).append([tensors, meta, type(m).__name__])

            def post(m, args, kwargs, output, key=key):
                tensors, meta, _ = records[key][-1]
                outs: "OrderedDict[str, torch.Tensor]" = OrderedDict()
                flatten("out", output, outs, meta)
                for k, v in outs.items():
                    tensors[k] = v.detach().clone()

            handles.append(mod.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(mod.register_forward_hook(post, with_kwargs=True))
        try:
            result = run()
        finally:
            for h in handles:
                h.remove()
        for p in paths:
            key = p if p else "full"
            calls = records.get(key, [])
            if len(calls) != 1:
                raise RuntimeError(f"{model_name}.{key}: expected exactly one call, got {len(calls)}")
            tensors, meta, cls = calls[0]
            self.write(model_name, key, case, cls, tensors, meta)
        return result

    def write(self, model_name, module_path, case, cls, tensors, meta):
        fname = f"{model_name}.{module_path}" + (f".{case}" if case else "") + ".safetensors"
        metadata = dict(meta)
        metadata["model"] = model_name
        metadata["module"] = module_path
        metadata["class"] = cls
        metadata["case"] = case or ""
        metadata["weights"] = self.weights[model_name]
        path = self.out_dir / fname
        write_safetensors(path, tensors, metadata)
        check_roundtrip(path, tensors, metadata)
        for k, v in tensors.items():
            if v.is_floating_point() and not torch.isfinite(v).all():
                raise RuntimeError(f"{fname}: {k} has non-finite values")
        self.manifest.append(
            OrderedDict(
                [
                    ("file", fname),
                    ("model", model_name),
                    ("module", module_path),
                    ("class", cls),
                    ("case", case or ""),
                    ("weights", self.weights[model_name]),
                    (
                        "tensors",
                        OrderedDict(
                            (k, OrderedDict([("dtype", _ST_DTYPES[_to_storable(tensors[k]).dtype]),
                                             ("shape", [int(s) for s in tensors[k].shape])]))
                            for k in sorted(tensors)
                        ),
                    ),
                    ("metadata", OrderedDict((k, meta[k]) for k in sorted(meta))),
                ]
            )
        )


def _rebuild(prefix: str, tensors: dict, meta: dict):
    if prefix in tensors:
        return tensors[prefix]
    if prefix in meta:
        return json.loads(meta[prefix])
    subs = sorted({int(k[len(prefix) + 1 :].split(".")[0]) for k in tensors if k.startswith(prefix + ".")})
    if subs != list(range(len(subs))) or not subs:
        raise KeyError(prefix)
    return tuple(_rebuild(f"{prefix}.{i}", tensors, meta) for i in subs)


def load_call(path: Path):
    """(args, kwargs, outputs, metadata) of a dump file, containers rebuilt as tuples."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = f.metadata() or {}
    names = [k for k in list(tensors) + list(meta) if k.startswith(("arg", "kw."))]
    nargs = 1 + max((int(k[3:].split(".")[0]) for k in names if k.startswith("arg")), default=-1)
    for k, v in list(tensors.items()):
        if f"strides.{k}" in meta:  # restore the memory layout the module saw
            tensors[k] = torch.empty_strided(v.shape, json.loads(meta[f"strides.{k}"]), dtype=v.dtype).copy_(v)
    args = [_rebuild(f"arg{i}", tensors, meta) for i in range(nargs)]
    kwargs = {k.split(".")[1]: None for k in names if k.startswith("kw.")}
    kwargs = {k: _rebuild(f"kw.{k}", tensors, meta) for k in kwargs}
    outs = {k: v for k, v in tensors.items() if k == "out" or k.startswith("out.")}
    return args, kwargs, outs, meta


def replay(path: Path, module: torch.nn.Module) -> None:
    """Run module on the inputs stored in path; the outputs must match the stored ones bit for bit."""
    args, kwargs, outs, _ = load_call(path)
    got: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    flatten("out", module(*args, **kwargs), got, {})
    assert set(got) == set(outs), (path.name, sorted(got), sorted(outs))
    for k in outs:
        assert torch.equal(_to_storable(got[k]), outs[k]), f"{path.name}: {k} differs on replay"
