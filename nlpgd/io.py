"""Writing and reading files so that nothing half-written ever looks finished.

Every file nlpgd writes (run folders, reports, figures, samples, the corpus cache) goes
through :func:`atomic_writer`: the content goes to a temporary file beside the target,
which replaces the target only once it is complete; on any failure the temporary file is
removed. A write that the system refuses (read-only folder, full disk, a path under
``/proc``, a folder where a file should go) is one :class:`NlpgdError` sentence naming the
path, never a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from nlpgd.errors import NlpgdError, first_line


def write_error(path: Path, exc: OSError) -> NlpgdError:
    """One sentence for a write the system refused."""
    reason = exc.strerror or first_line(exc)
    return NlpgdError(f"cannot write {path}: {reason}")


# what the system says when it refuses a write: full disk or quota, read-only, no permission, too big
WRITE_REFUSALS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG})


def is_write_refusal(exc: OSError) -> bool:
    """Whether ``exc`` is the system refusing a write (as opposed to a bug or a missing file)."""
    return exc.errno in WRITE_REFUSALS


# how libraries that write without Python's open (torch.save's zip writer, safetensors' Rust
# writer) report a write that failed: a RuntimeError or their own error type, never an OSError
_FAILED_WRITE = re.compile(
    r"unexpected pos|iostream|file write failed|failed writing|cannot be opened|No space left|StorageFull"
    r"|Disk quota|Read-only file system|os error (28|30|122)|Errno (28|30|122)",
    re.IGNORECASE,
)
FULL_BELOW = 1 << 20  # bytes free under which a disk counts as full


def free_bytes(folder: Path) -> int | None:
    """Free bytes on the disk holding ``folder`` (its nearest existing parent); None if unknown."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


@contextmanager
def library_writes(folder: Path, what: str) -> Iterator[None]:
    """A block in which a library writes ``what`` under ``folder`` (the Trainer's checkpoints
    through ``torch.save``, ``save_pretrained``, tokenizer files, arrays): a write it could not
    make, whatever type the library raises it as, becomes one sentence naming ``what``, where,
    and why (a full disk as such). Anything else passes through untouched."""
    try:
        yield
    except NlpgdError:
        raise
    except OSError as exc:
        if not is_write_refusal(exc):
            raise
        raise NlpgdError(
            f"cannot write {what} in {exc.filename or folder}: {exc.strerror or first_line(exc)}"
        ) from None
    except Exception as exc:
        if not isinstance(exc, RuntimeError) and type(exc).__name__ != "SafetensorError":
            raise
        free = free_bytes(folder)
        full = free is not None and free < FULL_BELOW
        if not (full or _FAILED_WRITE.search(str(exc))):
            raise
        reason = os.strerror(errno.ENOSPC) if full else f"the write failed ({first_line(exc)})"
        raise NlpgdError(f"cannot write {what} in {folder}: {reason}") from None


def check_free_space(folder: Path, need: int, what: str) -> None:
    """One sentence, before the work, when the disk holding ``folder`` has less than ``need``
    bytes free for ``what``."""
    free = free_bytes(folder)
    if free is not None and free < need:
        raise NlpgdError(
            f"not enough free space in {folder} for {what}: about {need / 2**20:.1f} MB needed, "
            f"{free / 2**20:.1f} MB free"
        )


NAME_PATTERN = r"[A-Za-z0-9._-]+"


def check_name(name: str, what: str) -> str:
    """A name that becomes one folder: letters, digits, '.', '_' and '-', never '.' or '..'
    (either would put the folder above or onto its parent). Returns ``name``."""
    if not re.fullmatch(NAME_PATTERN, name or "") or name in (".", ".."):
        raise NlpgdError(
            f"{what} {name!r} is not a folder name: use letters, digits, '.', '_' and '-' (not '.' or '..')"
        )
    return name


def inside_folder(path: Path, owner: Path) -> bool:
    """Whether ``path``, links resolved, is ``owner`` itself or lies below it."""
    path, owner = path.resolve(), owner.resolve()
    return path == owner or owner in path.parents


def check_owned_folder(path: Path, owner: Path, marker: str) -> bool:
    """Whether nlpgd may remove ``path``: True for a real folder (not a link) directly inside
    ``owner`` once resolved, holding the ``marker`` file nlpgd wrote there; False when nothing
    is there. Anything else at that place is refused with one sentence."""
    if not path.exists() and not path.is_symlink():
        return False
    owned = (
        not path.is_symlink()
        and path.is_dir()
        and path.resolve().parent == owner.resolve()
        and (path / marker).is_file()
    )
    if not owned:
        raise NlpgdError(f"{path} exists and was not written by nlpgd; it is left as it is: choose another name")
    return True


def remove_owned_folder(path: Path, owner: Path, marker: str) -> None:
    """Remove ``path`` if nlpgd made it (see :func:`check_owned_folder`), refuse otherwise."""
    if check_owned_folder(path, owner, marker):
        shutil.rmtree(path)


def check_writable(folder: Path, what: str | None = None) -> Path:
    """``folder`` (created if needed) once a file has been written into it the way every nlpgd
    write goes (a temporary file renamed into place) and removed again; otherwise one sentence,
    ``what`` (default ``cannot write into FOLDER``) and the reason. Commands call it before long
    work, so a bad output place costs nothing."""
    folder = Path(folder)
    what = what or f"cannot write into {folder}"
    tmp = probe = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".nlpgd-write-test-", suffix=".tmp")
        os.close(fd)
        probe = Path(tmp).with_suffix(".done")
        os.replace(tmp, probe)
        probe.unlink()
    except FileExistsError:
        raise NlpgdError(f"{what}: {folder} is a file, not a folder") from None
    except OSError as exc:
        for leftover in (tmp, probe):
            if leftover is not None:
                with contextlib.suppress(OSError):
                    Path(leftover).unlink(missing_ok=True)
        raise NlpgdError(f"{what}: {exc.strerror or first_line(exc)}") from None
    return folder


def cache_root() -> Path:
    """Where nlpgd keeps what it can rebuild (corpora, converted weights): ``$NLPGD_CACHE``
    if set, else ``~/.cache/nlpgd``; never inside the repository."""
    root = os.environ.get("NLPGD_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "nlpgd"


def ensure_dir(path: Path) -> Path:
    """``path`` as a folder (created with its parents), or one sentence saying why not."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NlpgdError(f"cannot write into {path}: it is a file, not a folder") from None
    except OSError as exc:
        raise write_error(path, exc) from None
    if not path.is_dir():
        raise NlpgdError(f"cannot write into {path}: it is not a folder")
    return path


@contextmanager
def atomic_writer(path: Path, mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` (mode 0644).

    ``mode`` is ``"w"`` (UTF-8 text unless ``encoding`` is given) or ``"wb"``. On any error,
    including Ctrl-C, the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    if path.is_dir():
        raise NlpgdError(f"cannot write {path}: it is a folder")
    ensure_dir(path.parent)
    if "b" not in mode:
        open_kwargs.setdefault("encoding", "utf-8")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise write_error(path, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_writer(path, "w") as f:
        f.write(text)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_writer(path, "wb") as f:
        f.write(data)


def _jsonable(o: Any):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=_jsonable) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    with atomic_writer(path, "w", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, default=_jsonable) + "\n")


def existing(path: Path, what: str, *, folder: bool = False) -> Path:
    """``path`` with ``~`` expanded, when it exists and is a file (a folder with ``folder``);
    otherwise one sentence: ``{what} not found: {path}`` or ``not a {what}: {path}``."""
    path = Path(path).expanduser()
    if not path.exists():
        raise NlpgdError(f"{what} not found: {path}")
    if not (path.is_dir() if folder else path.is_file()):
        raise NlpgdError(f"not a {what}: {path}")
    return path


def check_regular_file(path: Path, what: str = "file") -> Path:
    """``path`` if it is a regular file (or a link to one); otherwise one sentence saying what
    it is: missing, or not a regular file (a folder, a device such as /dev/urandom, a pipe,
    a link to nothing)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.exists() and not path.is_symlink():
        raise NlpgdError(f"{what} {path} is missing")
    target = path.resolve()
    kind = (
        "a link to nothing"
        if not target.exists()
        else "a folder"
        if target.is_dir()
        else "a device"
        if target.is_char_device() or target.is_block_device()
        else "a pipe or socket"
    )
    link = f"a link to {os.readlink(path)}, " if path.is_symlink() else ""
    raise NlpgdError(f"{what} {path} is not a regular file ({link}{kind})")


def read_json(path: Path, what: str = "file") -> Any:
    """Parsed JSON of ``path``, or one sentence naming the file (missing, unreadable, damaged)."""
    path = check_regular_file(path, what)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise NlpgdError(f"cannot read {what} {path}: {first_line(exc)}") from None
    except ValueError:
        raise NlpgdError(f"{what} {path} is not valid JSON (truncated or damaged)") from None


class RepeatedKey(Exception):
    """A YAML mapping that gives one key twice (``key``, 1-based ``line``)."""

    def __init__(self, key: Any, line: int):
        super().__init__(f"key {key!r} is given twice (line {line})")
        self.key, self.line = key, line


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that refuses a key given twice in one mapping (where YAML would let the
    last silently win) with :class:`RepeatedKey`; merge keys (``<<: *base``) may still be
    overridden, as YAML means them to be."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader, node):
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = loader.construct_object(key_node)
                if key in seen:
                    raise RepeatedKey(key, key_node.start_mark.line + 1)
                seen.add(key)
        yield from loader.construct_yaml_map(node)

    Loader.add_constructor("tag:yaml.org,2002:map", mapping)
    return yaml.load(text, Loader=Loader)  # a SafeLoader subclass: no Python objects


def check_output_file(path: Path, what: str = "--out") -> Path:
    """``path`` once a file can be written there (its folder is created and tested as every
    write goes, see :func:`check_writable`); a folder at ``path`` or at its ``.partial`` name,
    or a folder nlpgd cannot write into, is one sentence. For commands to call before long work."""
    path = Path(path)
    for target in (path, partial_path(path)):
        if target.is_dir():
            raise NlpgdError(f"{what} {target} is a folder: name a file")
    check_writable(path.parent, f"{what} {path}: cannot write into {path.parent}")
    return path


def partial_path(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".partial")


_LEFT_PARTIAL: list[tuple[Path, Path]] = []  # (the .partial file kept on Ctrl-C, the file it was to become)


def left_partial() -> list[tuple[Path, Path]]:
    """The ``(partial file, final name)`` pairs that Ctrl-C left behind since the last call
    (for the command's closing line, :func:`nlpgd.cli.common.cli_errors`); the list is emptied."""
    out = list(_LEFT_PARTIAL)
    _LEFT_PARTIAL.clear()
    return out


@contextmanager
def partial_writer(path: Path) -> Iterator[IO]:
    """Stream text (UTF-8) into ``PATH.partial``, renamed to ``path`` once the block ends.

    For output written as it is produced (millions of lines): what a reader finds under
    ``path`` is always complete. On an error the partial file is removed; on Ctrl-C it is
    kept, under its ``.partial`` name, with everything written so far."""
    path = Path(path)
    tmp = partial_path(path)
    ensure_dir(path.parent)
    try:
        f = open(tmp, "w", encoding="utf-8", newline="\n")
    except OSError as exc:
        raise write_error(tmp, exc) from None
    try:
        with f:
            yield f
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except KeyboardInterrupt:
        _LEFT_PARTIAL.append((tmp, path))
        raise
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(path, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
