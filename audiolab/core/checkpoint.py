"""Checkpoints and what makes a resume exact: atomic save / load, every random state, settings and data fingerprints.

:func:`audiolab.core.train.fit` saves ``random_state`` (:func:`capture_random_state`) and a
fingerprint (:func:`config_fingerprint`, :func:`data_fingerprint`) with every checkpoint, and on
``--resume`` restores the first and compares the second (:func:`fingerprint_mismatch`), so a
resumed run trains on the same batches with the same augmentation as an uninterrupted one, or
stops and names what differs.
"""

from __future__ import annotations

import errno
import hashlib
import math
import random
import re
import types
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from audiolab.core.outputs import atomic_write
from audiolab.core.runtime import UserError, describe_os_error

#: config keys that may change between a run and its ``--resume`` (where it runs, how long, what it prints)
#: (``epochs`` is checked on its own: :func:`resume_schedule`)
RESUME_FREE_KEYS = frozenset({"resume", "epochs", "extend_to", "device", "out_dir", "threads", "num_workers",
                              "workers", "amp", "data_root", "download", "progress", "quiet", "verbose", "max_wavs",
                              "save_audio", "command", "func"})


#: errno values and ``torch.save`` messages that mean "the disk (or a size limit) is full"
_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_FULL_TEXT = ("inline_container", "No space left", "File too large", "file write failed", "Disk quota")


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> Path:
    """``torch.save`` to a temp file, then rename (never a half-written checkpoint).

    A full disk or a file-size limit (``OSError`` ENOSPC / EFBIG / EDQUOT, or the
    ``RuntimeError: [enforce fail at inline_container.cc]`` torch's zip writer raises for
    them) leaves the previous checkpoint as it was and becomes one :class:`UserError` that
    says how to go on (docs/ARCHITECTURE.md, "Rules").

    Raises:
        UserError: the checkpoint could not be written for lack of space or a size limit.
    """
    path = Path(path)
    try:
        with atomic_write(path) as tmp:
            torch.save(dict(state), tmp)
    except (OSError, RuntimeError) as err:
        if isinstance(err, OSError) and err.errno not in _FULL_ERRNOS:
            raise
        if isinstance(err, RuntimeError) and not any(t in str(err) for t in _FULL_TEXT):
            raise
        kept = ("the previous checkpoint there is intact: free some space and rerun the same command with --resume"
                if path.exists() else "free some space and rerun the same command")
        why = describe_os_error(err) if isinstance(err, OSError) else str(err).splitlines()[0][:160]
        raise UserError(f"cannot write the checkpoint {path}: the disk is full or the file is too large ({why}); "
                        f"{kept}") from None
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Raises:
        UserError: the file is missing or cannot be read (e.g. truncated).
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint {path} does not exist; train first (without --resume)")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # truncated / corrupt file
        raise UserError(f"checkpoint {path} cannot be read ({err}); delete it and train again") from None


# ------------------------------------------------------------------------------- random state
_GENERATOR_TYPES = (torch.Generator, np.random.Generator, np.random.RandomState, random.Random)


def global_rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_global_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def find_generators(roots: Mapping[str, Any], depth: int = 3) -> dict[str, Any]:
    """Random generators held as attributes of ``roots`` (and of their attributes, ``depth`` levels down).

    Lists, dicts, tensors and arrays are not searched (datasets keep their examples there);
    of a ``torch.nn.Module`` every submodule's attributes are searched. Returns
    ``{"loader.sampler.generator": gen, ...}`` in a deterministic order, each generator once.
    """
    found: dict[str, Any] = {}
    seen: set[int] = set()

    def visit(obj: Any, path: str, level: int) -> None:
        if id(obj) in seen:
            return
        if isinstance(obj, _GENERATOR_TYPES):
            seen.add(id(obj))
            found[path] = obj
            return
        if level == 0 or obj is None or isinstance(obj, (str, bytes, int, float, bool, Path, torch.Tensor, np.ndarray,
                                                         list, tuple, dict, set, frozenset, type, types.ModuleType,
                                                         types.FunctionType, types.MethodType)):
            return
        seen.add(id(obj))
        if isinstance(obj, torch.nn.Module):
            for name, module in obj.named_modules():
                seen.add(id(module))
                for key, value in vars(module).items():
                    if not isinstance(value, torch.nn.Module):
                        visit(value, f"{path}.{name}.{key}" if name else f"{path}.{key}", 1)
            return
        attrs = getattr(obj, "__dict__", None)
        if attrs is None:
            return
        for key, value in list(attrs.items()):
            if key != "_iterator":  # a DataLoader's live iterator
                visit(value, f"{path}.{key}", level - 1)

    for name, root in roots.items():
        visit(root, name, depth)
    return found


def _generator_state(gen: Any) -> Any:
    if isinstance(gen, torch.Generator):
        return gen.get_state()
    if isinstance(gen, np.random.Generator):
        return gen.bit_generator.state
    if isinstance(gen, np.random.RandomState):
        return gen.get_state()
    return gen.getstate()


def _set_generator_state(gen: Any, state: Any) -> None:
    if isinstance(gen, torch.Generator):
        gen.set_state(state)
    elif isinstance(gen, np.random.Generator):
        gen.bit_generator.state = state
    elif isinstance(gen, np.random.RandomState):
        gen.set_state(state)
    else:
        gen.setstate(state)


def _has_state_protocol(loader: Any) -> bool:
    return (not isinstance(loader, torch.utils.data.DataLoader) and callable(getattr(loader, "state_dict", None))
            and callable(getattr(loader, "load_state_dict", None)))


def capture_random_state(loader: Any, generators: Mapping[str, Any]) -> dict:
    """Everything random the next epoch depends on, for this process."""
    return {"rng": global_rng_state(), "generators": {k: _generator_state(g) for k, g in generators.items()},
            "loader": loader.state_dict() if _has_state_protocol(loader) else None}


def restore_random_state(entry: Mapping[str, Any], loader: Any, generators: Mapping[str, Any]) -> None:
    if entry.get("rng") is not None:
        set_global_rng_state(entry["rng"])
    missing = []
    for key, value in (entry.get("generators") or {}).items():
        if key in generators:
            _set_generator_state(generators[key], value)
        else:
            missing.append(key)
    if missing:
        warnings.warn(f"the checkpoint holds random state for {', '.join(missing)}, which this run does not have; "
                      "the resumed epochs may differ from an uninterrupted run", stacklevel=4)
    if entry.get("loader") is not None and _has_state_protocol(loader):
        loader.load_state_dict(entry["loader"])


# ------------------------------------------------------------------------------- fingerprints
def _digest_update(h: "hashlib._Hash", obj: Any, depth: int, stack: set[int], max_bytes: int) -> None:
    """Feed a canonical description of ``obj`` into ``h`` (content of arrays, not their addresses)."""
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        h.update(f"{type(obj).__name__}:{obj!r};".encode())
        return
    if isinstance(obj, Path):
        h.update(f"path:{obj};".encode())
        return
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu()
        if obj.dtype == torch.bfloat16:
            obj = obj.view(torch.int16)
        obj = obj.contiguous().numpy()
    if isinstance(obj, np.ndarray):
        h.update(f"array:{obj.dtype}:{obj.shape};".encode())
        flat = np.ascontiguousarray(obj).reshape(-1).view(np.uint8) if obj.dtype != object else None
        if flat is None:
            for item in obj.reshape(-1).tolist():
                _digest_update(h, item, depth - 1, stack, max_bytes)
        elif flat.size <= max_bytes:
            h.update(flat.tobytes())
        else:  # large arrays: head, tail and an even sample (content changes of real data show up in all three)
            q = max_bytes // 4
            h.update(flat[:q].tobytes())
            h.update(flat[-q:].tobytes())
            h.update(flat[:: max(1, flat.size // (2 * q))][:2 * q].tobytes())
        return
    if isinstance(obj, _GENERATOR_TYPES) or isinstance(obj, (torch.nn.Module, type, types.ModuleType,
                                                             types.FunctionType, types.MethodType,
                                                             types.BuiltinFunctionType)):
        h.update(f"{type(obj).__name__};".encode())  # state that changes while training, or code
        return
    if depth <= 0 or id(obj) in stack:
        h.update(f"{type(obj).__name__}:...;".encode())
        return
    stack.add(id(obj))
    try:
        if isinstance(obj, (list, tuple)):
            h.update(f"{type(obj).__name__}[{len(obj)}];".encode())
            for item in obj:
                _digest_update(h, item, depth - 1, stack, max_bytes)
        elif isinstance(obj, Mapping):
            h.update(f"map[{len(obj)}];".encode())
            for key in sorted(obj, key=repr):
                h.update(f"{key!r}=".encode())
                _digest_update(h, obj[key], depth - 1, stack, max_bytes)
        elif isinstance(obj, (set, frozenset)):
            h.update(f"set:{sorted(map(repr, obj))!r};".encode())
        elif hasattr(obj, "__dict__"):
            h.update(f"{type(obj).__qualname__}{{".encode())
            _digest_update(h, {k: v for k, v in vars(obj).items() if k != "_iterator"}, depth - 1, stack, max_bytes)
            h.update(b"}")
        else:
            h.update(f"{type(obj).__qualname__};".encode())
    finally:
        stack.discard(id(obj))


def data_fingerprint(data: Any, *, max_array_bytes: int = 16 << 20) -> dict:
    """A content fingerprint of training data, to tell on ``--resume`` whether the data are the same.

    Args:
        data: a ``DataLoader`` (its dataset is used), a dataset, a tensor / array, or any
            object whose attributes hold the data (lists of clips, tensors, paths, labels).
            Random generators, modules and functions are left out (they change while
            training or are code); arrays are hashed by content (those over
            ``max_array_bytes`` by a head, tail and even sample of their bytes).

    Returns:
        ``{"sha256": hex, "parts": {attribute: sha256 hex}, "items": len(data) or None}``;
        ``parts`` lets a mismatch name which attribute (e.g. ``clips``) differs.
    """
    if isinstance(data, torch.utils.data.DataLoader):
        data = data.dataset
    if isinstance(data, torch.utils.data.TensorDataset):
        parts_src = {f"tensors[{i}]": t for i, t in enumerate(data.tensors)}
    elif hasattr(data, "__dict__") and not isinstance(data, (torch.Tensor, np.ndarray)):
        parts_src = {k: v for k, v in vars(data).items() if k != "_iterator"}
    else:
        parts_src = {"data": data}
    parts = {}
    for key, value in parts_src.items():
        h = hashlib.sha256()
        _digest_update(h, value, 8, set(), max_array_bytes)
        parts[key] = h.hexdigest()
    total = hashlib.sha256(repr(sorted(parts.items())).encode()).hexdigest()
    try:
        items = len(data)
    except TypeError:
        items = None
    return {"sha256": total, "parts": parts, "items": items}


def _plain(value: Any) -> Any:
    """JSON-like, address-free form of a config value (for comparing two runs' settings)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", str(value))


def config_fingerprint(config: Mapping[str, Any] | None) -> dict:
    """The settings a resumed run must share with the run that wrote the checkpoint.

    Every key of ``config`` except :data:`RESUME_FREE_KEYS` (where and how long it runs,
    what it prints) and folders (``*_dir``, ``*_root``: the data are compared by content,
    :func:`data_fingerprint`), in a plain, comparable form.
    """
    return {str(k): _plain(v) for k, v in (config or {}).items()
            if k not in RESUME_FREE_KEYS and not str(k).endswith(("_dir", "_root"))}


def _short(value: Any, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def fingerprint_mismatch(saved: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between a checkpoint's fingerprint and this run's (empty when they agree)."""
    if not saved:
        return []
    problems = []
    old_cfg, new_cfg = saved.get("config"), current["config"]
    if old_cfg is not None:
        keys = sorted(set(old_cfg) | set(new_cfg))
        diffs = [f"{k} {_short(old_cfg.get(k, '(unset)'))} -> {_short(new_cfg.get(k, '(unset)'))}"
                 for k in keys if old_cfg.get(k, "(unset)") != new_cfg.get(k, "(unset)")]
        if diffs:
            problems.append("settings differ: " + "; ".join(diffs))
    old_data, new_data = saved.get("data"), current.get("data")
    if old_data and new_data and old_data.get("sha256") != new_data.get("sha256"):
        parts = [k for k in sorted(set(old_data.get("parts", {})) | set(new_data.get("parts", {})))
                 if old_data.get("parts", {}).get(k) != new_data.get("parts", {}).get(k)]
        items = ""
        if old_data.get("items") is not None or new_data.get("items") is not None:
            items = f", {old_data.get('items')} items then, {new_data.get('items')} now"
        problems.append(f"the training data differ (in {', '.join(parts) or 'content'}{items})")
    old_world, new_world = saved.get("world_size", 1), current.get("world_size", 1)
    if old_world != new_world:
        problems.append(f"world_size {old_world} -> {new_world} (torchrun processes; the effective batch size "
                        "would change)")
    return problems


def resume_schedule(state: Mapping[str, Any], epochs: int, extend_to: int | None, checkpoint_path: Any) -> dict:
    """The schedule a resumed run follows: the checkpoint's own, or an explicit extension of a finished run.

    Resume is exact or refused (docs/ARCHITECTURE.md, "Rules"): the learning-rate schedules
    depend on the epoch count, so ``--resume`` must ask for the epochs the checkpoint was
    written for. ``--extend-to N`` (``extend_to``) continues a *finished* run to ``N`` epochs;
    the result is not an ``N``-epoch run and says so (``extended_from_epochs``).

    Args:
        state: the loaded checkpoint (``schedule``, else ``config["epochs"]`` of older ones, and ``epoch``).
        epochs: the epochs this run asks for.
        extend_to: ``--extend-to``, or ``None``.

    Returns:
        ``{"epochs": N, "extended_from_epochs": E or None}``, saved in every later checkpoint.

    Raises:
        UserError: another epoch count without ``--extend-to``, an extension of an unfinished run,
            or one that does not go beyond the checkpoint's epochs.
    """
    saved = dict(state.get("schedule") or {})
    planned = saved.get("epochs", (state.get("config") or {}).get("epochs"))
    done = int(state.get("epoch", 0))
    base = {"epochs": epochs, "extended_from_epochs": saved.get("extended_from_epochs")}
    if planned is None:
        return base
    planned = int(planned)
    if extend_to is None:
        if epochs != planned:
            raise UserError(f"cannot --resume {checkpoint_path} with --epochs {epochs}: it belongs to a "
                            f"{planned}-epoch run (at epoch {done}) and the learning-rate schedule depends on the "
                            f"epoch count, so the result would match neither run. Resume with --epochs {planned}, or, "
                            f"once it is finished, continue it with --extend-to {epochs} (recorded in metrics.json)")
        return base
    if done < planned:
        raise UserError(f"cannot --extend-to {extend_to}: {checkpoint_path} is an unfinished {planned}-epoch run "
                        f"(at epoch {done}); finish it first with --resume --epochs {planned}")
    if extend_to <= planned:
        raise UserError(f"--extend-to {extend_to} does not go beyond the {planned} epochs of {checkpoint_path}")
    return {"epochs": extend_to, "extended_from_epochs": saved.get("extended_from_epochs") or planned}
