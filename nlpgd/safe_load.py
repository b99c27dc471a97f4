"""Reading folders that may be damaged or hostile: saved models, checkpoints, run folders.

Everything nlpgd reads back from disk was written by nlpgd, but a run folder can be copied
from anywhere, cut short by a full disk or a kill, or crafted. The rules:

- no code from a folder ever runs: every ``from_pretrained`` passes
  ``trust_remote_code=False``, and a folder whose ``config.json`` or
  ``tokenizer_config.json`` asks for custom code (``auto_map``) is refused before
  transformers sees it, so nothing prompts on stdin;
- a path read from a state file must resolve inside its folder (no absolute path, no
  ``..``, no symbolic link that leaves the folder);
- weights are safetensors or ``.npy`` without pickle; a truncated safetensors file is
  found by ``safetensors.safe_open`` before loading, and any failure to load becomes one sentence
  naming the file (:class:`~nlpgd.errors.NlpgdError`), never a traceback.
"""

from __future__ import annotations

import pickle
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from nlpgd.errors import NlpgdError, first_line
from nlpgd.io import check_regular_file, read_json

#: Files whose ``auto_map`` would make transformers import a module from the folder.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
CODE_MAP_FILES = ("config.json", "tokenizer_config.json", "processor_config.json", "preprocessor_config.json")


def inside(folder: Path, relative: Any, what: str) -> Path:
    """``folder / relative``, refused unless it stays inside ``folder`` once resolved.

    ``relative`` comes from a saved state file: an absolute path, a ``..`` or a symbolic link
    that leads out of ``folder`` is refused with one sentence naming ``what``.
    """
    folder = Path(folder)
    if not isinstance(relative, str) or not relative or Path(relative).is_absolute():
        raise NlpgdError(f"{what} must be a relative path inside {folder}, got {relative!r}")
    target = (folder / relative).resolve()
    root = folder.resolve()
    if target != root and root not in target.parents:
        raise NlpgdError(f"{what} {relative!r} leads outside {folder}; refusing to read it")
    return target


def refuse_custom_code(folder: Path) -> None:
    """Error if a model folder asks transformers to import code of its own (``auto_map``)."""
    folder = Path(folder)
    for name in CODE_MAP_FILES:
        path = folder / name
        if not path.is_file():
            continue
        data = read_json(path, "model file")
        if isinstance(data, dict) and data.get("auto_map"):
            raise NlpgdError(
                f"{path} asks to run custom code from the folder (auto_map); "
                "nlpgd never runs code from a model folder, so it refuses to load it"
            )


def check_safetensors(path: Path) -> None:
    """Error naming ``path`` unless it is a complete safetensors file (header and data).

    ``safetensors.safe_open`` reads the header and checks that the tensors' byte ranges
    cover the file exactly, so a file cut short by a kill or a full disk (or with bytes
    appended) is refused without reading the tensors.
    """
    from safetensors import SafetensorError, safe_open

    path = check_regular_file(path, "weights file")
    try:
        with safe_open(str(path), framework="np"):
            pass
    except (SafetensorError, OSError, ValueError) as exc:
        raise NlpgdError(f"weights file {path} is truncated or damaged ({first_line(exc)})") from None


def check_weights(folder: Path) -> None:
    """Check every safetensors file of a model folder (see :func:`check_safetensors`)."""
    for path in sorted(Path(folder).glob("*.safetensors")):
        check_safetensors(path)


@contextmanager
def load_errors(path: Path, what: str) -> Iterator[None]:
    """Turn whatever loading ``what`` from ``path`` raises into one sentence naming it.

    Pickle refusals (``weights_only`` / ``allow_pickle=False``) are named as such: their own
    messages suggest turning the protection off, which nlpgd never does.
    """
    try:
        yield
    except NlpgdError:
        raise
    except pickle.UnpicklingError:
        raise _pickle_error(path, what) from None
    except FileNotFoundError as exc:
        missing = exc.filename or first_line(exc)
        raise NlpgdError(f"cannot load {what}: {missing} is missing") from None
    except (OSError, ValueError, KeyError, TypeError, IndexError, EOFError, RuntimeError, AttributeError) as exc:
        text = first_line(exc)
        if "pickle" in text.lower() or "weights_only" in text:
            raise _pickle_error(path, what) from None
        raise NlpgdError(f"cannot load {what} from {path}: {text}") from None


def _pickle_error(path: Path, what: str) -> NlpgdError:
    path = Path(path)
    pickles = sorted(p.name for p in path.glob("*") if p.suffix in PICKLE_SUFFIXES) if path.is_dir() else []
    where = f"{path / pickles[0]}" if len(pickles) == 1 else f"{path}"
    return NlpgdError(f"{what}: {where} is a pickle, which nlpgd never loads (loading a pickle can run code)")
