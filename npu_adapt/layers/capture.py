"""Capturing what happens inside one forward pass: module rows and API rows.

Two kinds of rows, in one execution order (a row is written when its tensor is produced):

- ``module``: the output (and with ``layer_inputs: true`` the inputs) of every leaf module,
  through forward hooks. Names: the module's name; a later call of the same module gets
  ``#1``, ``#2``...; a module returning several tensors gets ``[0]``, ``[1]``... per tensor.
- ``api``: every torch function, ``torch.nn.functional`` function and tensor method that
  computes a floating-point tensor, through a ``TorchFunctionMode`` (the model is never
  patched). Names follow msprobe's: ``Functional.linear.0`` is the first call of
  ``F.linear``, ``Tensor.add.3`` the fourth ``Tensor.add``. Only the outermost call is seen
  (``F.layer_norm`` calling ``torch.layer_norm`` is one row). Ops that move or relabel data
  without computing (view, reshape, transpose, to, dropout at inference...) are left out.

Every row names the module it ran in (``module``: for an API row, the innermost module
running, leaf or not) and ``parent``, that module's msprobe key.

Three ways to record a row (``mode``):

- ``tensors``: the tensor itself as ``{order:05d}_{name}.npy`` (bfloat16 widened exactly to
  float32; ``compute_dtype`` keeps the dtype the model computed in);
- ``stats``: shape, compute dtype, min, max, mean, L2 norm (over the finite values), NaN and
  Inf counts and a checksum, computed on the device: a few hundred bytes per row whatever
  the tensor's size;
- ``shapes``: shape and the bytes a ``tensors`` capture would write (the size guard's
  estimate), nothing else.

Reference and target run the same code on the same inputs, so the names match one to one.
"""

from __future__ import annotations

import re
from pathlib import Path

from npu_adapt.io import save_tensor, to_numpy

MODES = ("stats", "tensors")
KINDS = ("module", "api")
NPY_HEADER_BYTES = 128  # np.save's header (format 1.0), per file

# Tensor methods and functions that only move, view or relabel data (or are the identity at
# inference): rows for them would repeat their input without saying anything new.
LAYOUT_OPS = frozenset(
    {
        *("view", "view_as", "reshape", "reshape_as", "transpose", "permute", "contiguous", "expand", "expand_as"),
        *("unsqueeze", "squeeze", "flatten", "unflatten", "unbind", "movedim", "swapaxes", "__getitem__"),
        *("split", "chunk", "narrow", "select", "t", "to", "type", "type_as", "float", "half", "bfloat16", "double"),
        *("clone", "detach", "cpu", "cuda", "npu", "numpy", "tolist", "item", "dropout"),
    }
)


def api_name(func) -> str | None:
    """msprobe's name of a torch API (``Functional.linear``, ``Torch.matmul``,
    ``Tensor.add``), or None for what is not recorded (property reads, layout ops)."""
    name = getattr(func, "__name__", None)
    if not name or name == "__get__" or name in LAYOUT_OPS:
        return None
    qualname = getattr(func, "__qualname__", "") or ""
    module = getattr(func, "__module__", "") or ""
    if qualname.startswith(("TensorBase.", "Tensor.")):
        return f"Tensor.{name}"
    if module in ("torch.nn.functional", "torch._C._nn"):
        return f"Functional.{name}"
    if module.startswith("torch") or qualname.startswith("_VariableFunctionsClass."):
        return f"Torch.{name}"
    return None


def tensors_in(value, suffix: str = ""):
    """(suffix, tensor) for every tensor in a value (tensor, tuple, list, dict)."""
    import torch

    if isinstance(value, torch.Tensor):
        yield suffix, value
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            yield from tensors_in(item, f"{suffix}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from tensors_in(item, f"{suffix}[{key}]")


def dtype_name(tensor) -> str:
    """``bfloat16``, ``float32``... (torch's name without the ``torch.`` prefix)."""
    return str(tensor.dtype).removeprefix("torch.")


def stored_bytes(tensor) -> int:
    """What ``tensors`` mode writes for one tensor: bfloat16 is stored as float32."""
    import torch

    itemsize = 4 if tensor.dtype == torch.bfloat16 else tensor.element_size()
    return tensor.numel() * itemsize + NPY_HEADER_BYTES


def tensor_statistics(tensor) -> dict:
    """min, max, mean and L2 norm over the finite values, NaN/Inf counts and a checksum,
    computed where the tensor lives (float64 on the CPU, float32 on an accelerator, whose
    float64 support varies), with a few transfers of scalars to the host.

    ``checksum``: the sum of the elements' bit patterns as int64 (wrapping), equal for
    bit-identical tensors of one dtype: a fingerprint, not a hash."""
    import torch

    values = tensor.detach()
    stats = {"numel": values.numel(), "min": None, "max": None, "mean": None, "norm": None, "nan": 0, "inf": 0}
    if values.numel() == 0:
        return {**stats, "checksum": None}
    accumulate = torch.float64 if values.device.type == "cpu" else torch.float32
    if values.is_floating_point() and bool(torch.isfinite(values).all()):
        # The usual case: five passes over the tensor and no copy of it (a third of the time
        # of the general case below); min and max are exact in the tensor's own dtype.
        summary = torch.stack(
            [
                values.amin().to(accumulate),
                values.amax().to(accumulate),
                values.sum(dtype=accumulate),
                torch.linalg.vector_norm(values, dtype=accumulate),
            ]
        )
        low, high, total, norm = summary.tolist()
        stats.update(min=low, max=high, mean=total / values.numel(), norm=norm)
        return {**stats, "checksum": _checksum(values)}
    work = values.to(accumulate)
    finite = torch.isfinite(work)
    zero = torch.zeros((), dtype=work.dtype, device=work.device)
    clean = torch.where(finite, work, zero)
    count = finite.sum()
    low = torch.where(finite, work, torch.full_like(zero, float("inf"))).amin()
    high = torch.where(finite, work, torch.full_like(zero, float("-inf"))).amax()
    summary = torch.stack(
        [
            low,
            high,
            clean.sum() / count.clamp(min=1),
            torch.linalg.vector_norm(clean),
            count.to(work.dtype),
            torch.isnan(work).sum().to(work.dtype),
        ]
    )
    low, high, mean, norm, count, nan = summary.tolist()
    stats.update(nan=int(nan), inf=values.numel() - int(count) - int(nan))
    if count:
        stats.update(min=low, max=high, mean=mean, norm=norm)
    return {**stats, "checksum": _checksum(values)}


def _checksum(values) -> int | None:
    import torch

    bits = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}.get(values.element_size())
    if bits is None or values.is_complex() or values.dtype == torch.bool:
        return None
    try:
        return int(values.contiguous().view(bits).to(torch.int64).sum().item())
    except RuntimeError:  # a device without the int64 reduction: no fingerprint, the stats stand
        return None


def _file_name(order: int, name: str) -> str:
    return f"{order:05d}_" + re.sub(r"[^A-Za-z0-9._\[\]#-]", "_", name) + ".npy"


def _is_leaf(module) -> bool:
    return next(module.children(), None) is None


class LayerCapture:
    """Context manager: while active, every selected row of a forward pass is recorded in
    ``entries`` (and with ``mode="tensors"`` saved under ``directory``).

    ``pattern`` (a regex, re.search) keeps the rows whose module name matches (for an API
    row: the module it ran in, or its own name); ``kinds`` selects module and/or API rows;
    ``inputs`` adds the inputs of each selected module or API call beside its outputs."""

    def __init__(
        self,
        model,
        directory: str | Path | None,
        mode: str = "tensors",
        pattern: str | None = None,
        kinds=KINDS,
        inputs: bool = False,
    ):
        if mode not in (*MODES, "shapes"):
            raise ValueError(f"layer capture mode {mode!r}: expected one of stats, tensors, shapes")
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"layer_kinds {sorted(unknown)}: expected module and/or api")
        self.model = model
        self.directory = Path(directory) if directory else None
        self.mode = mode
        self.pattern = re.compile(pattern) if pattern else None
        self.kinds = tuple(kinds)
        self.inputs = inputs
        self.entries: list[dict] = []
        self.bytes = 0  # of the .npy files written (tensors) or to be written (shapes)
        self.calls: dict[str, int] = {}  # per module name
        self.api_calls: dict[str, int] = {}  # per API name (msprobe numbers each API's calls)
        self.stack: list[tuple[str, str]] = []  # (name, msprobe key) of the modules running, innermost last
        self.handles: list = []
        self.api_mode = None
        self.busy = False  # recording a row: the torch calls that takes are not rows

    def selected(self, name: str) -> bool:
        return self.pattern is None or bool(self.pattern.search(name))

    def modules(self) -> list[tuple[str, object]]:
        """The leaf modules whose rows are captured, in registration order."""
        if "module" not in self.kinds:
            return []
        return [
            (name, module)
            for name, module in self.model.named_modules()
            if name and _is_leaf(module) and self.selected(name)
        ]

    def __enter__(self) -> LayerCapture:
        if self.mode == "tensors":
            clear_dump(self.directory)
            self.directory.mkdir(parents=True, exist_ok=True)
        captured = {name for name, _ in self.modules()}
        # Every module keeps the stack (which module an API call ran in); leaves also record.
        for name, module in self.model.named_modules():
            record = name in captured
            self.handles.append(module.register_forward_pre_hook(self._enter_hook(name, type(module).__name__, record)))
            self.handles.append(
                module.register_forward_hook(self._exit_hook(name, type(module).__name__, record), always_call=True)
            )
        if "api" in self.kinds:
            self.api_mode = _ApiMode(self)
            self.api_mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.api_mode is not None:
            self.api_mode.__exit__(*exc)
            self.api_mode = None
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def _enter_hook(self, name: str, type_name: str, record: bool):
        def enter(module, args):
            call = self.calls.get(name, 0)
            self.calls[name] = call + 1
            if record and self.inputs:
                self._record(args, "module", name, type_name, call, "input", self.stack[-1][1] if self.stack else None)
            self.stack.append((name, f"Module.{name or 'root'}.{type_name}.forward.{call}"))

        return enter

    def _exit_hook(self, name: str, type_name: str, record: bool):
        def leave(module, args, output):
            self.stack.pop()
            if record:
                self._record(
                    output,
                    "module",
                    name,
                    type_name,
                    self.calls[name] - 1,
                    "output",
                    self.stack[-1][1] if self.stack else None,
                )

        return leave

    def _record(
        self,
        value,
        kind: str,
        base: str,
        type_name: str,
        call: int,
        io: str,
        parent: str | None,
        module: str | None = None,
    ) -> None:
        stem = f"{base}#{call}" if kind == "module" and call else base
        if io == "input":
            stem += ".input"
        self.busy = True
        try:
            self._record_tensors(value, kind, stem, base, type_name, call, io, parent, module)
        finally:
            self.busy = False

    def _record_tensors(self, value, kind, stem, base, type_name, call, io, parent, module) -> None:
        for suffix, tensor in tensors_in(value):
            if kind == "api" and not tensor.is_floating_point():
                continue
            name = stem + suffix
            order = len(self.entries)
            entry = {
                "name": name,
                "layer_kind": kind,
                "module": module if module is not None else base,
                "type": type_name,
                "call": call,
                "io": io,
                "parent": parent,
                "order": order,
            }
            if self.mode == "tensors":
                entry.update(save_tensor(self.directory / _file_name(order, name), name, to_numpy(tensor)))
                self.bytes += (self.directory / entry["file"]).stat().st_size
            elif self.mode == "stats":
                entry.update(shape=list(tensor.shape), **tensor_statistics(tensor))
            else:
                entry.update(shape=list(tensor.shape))
                self.bytes += stored_bytes(tensor)
            entry["compute_dtype"] = dtype_name(tensor)
            self.entries.append(entry)

    def api_done(self, api: str, inputs, output) -> None:
        """After an API call: its rows, when it computed a floating-point tensor in scope."""
        if not any(tensor.is_floating_point() for _, tensor in tensors_in(output)):
            return
        # Numbered before the scope applies, so a row keeps its name whatever layer_pattern is.
        call = self.api_calls.get(api, 0)
        self.api_calls[api] = call + 1
        module, parent = self.stack[-1] if self.stack else ("", None)
        if not (self.selected(module) or self.selected(api)):
            return
        if self.inputs:
            self._record(inputs, "api", f"{api}.{call}", api, call, "input", parent, module)
        self._record(output, "api", f"{api}.{call}", api, call, "output", parent, module)


def _api_mode_class():
    from torch.overrides import TorchFunctionMode

    class ApiMode(TorchFunctionMode):
        """Sees every torch function and tensor method call (torch switches the mode off
        while the handler runs; the capture's own calls from module hooks it skips)."""

        def __init__(self, capture: LayerCapture):
            super().__init__()
            self.capture = capture

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            capture = self.capture
            api = None if capture.busy else api_name(func)
            if api is None:
                return func(*args, **kwargs)
            inputs = (*args, *kwargs.values())
            if capture.inputs and _in_place(api):  # the call overwrites an input: keep it as it was
                inputs = tuple(value.clone() if hasattr(value, "clone") else value for value in inputs)
            result = func(*args, **kwargs)
            capture.api_done(api, inputs, result)
            return result

    return ApiMode


def _in_place(api: str) -> bool:
    name = api.rsplit(".", 1)[-1]
    return (name.endswith("_") and not name.endswith("__")) or name.startswith("__i")


def _ApiMode(capture: LayerCapture):
    return _api_mode_class()(capture)


def clear_dump(directory: Path | None) -> None:
    """Remove a previous run's layer dump (ours only: .npy files and index.json)."""
    if directory is None or not directory.is_dir():
        return
    for path in directory.glob("*.npy"):
        path.unlink()
    (directory / "index.json").unlink(missing_ok=True)
