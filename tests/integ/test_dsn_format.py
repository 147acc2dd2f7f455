"""The golden DSNs of tests/unit/test_dsn.c, read back with Python's email package: a DSN that
one independent MIME parser cannot take apart is broken, whatever our own tests say.

Needs no binary: it reads tests/data/dsn/*.ref, which test_dsn keeps byte-exact.
"""

import email
import email.policy
import glob
import os

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
REFS = sorted(glob.glob(os.path.join(REPO, "tests", "data", "dsn", "*.ref")))


def parse(path):
    with open(path, "rb") as f:
        raw = f.read()
    return raw, email.message_from_bytes(raw, policy=email.policy.compat32)


def test_there_are_golden_files():
    assert len(REFS) >= 6


@pytest.mark.parametrize("path", REFS, ids=[os.path.basename(p) for p in REFS])
def test_dsn_parses_as_rfc3464(path):
    raw, msg = parse(path)
    # CRLF only, lines of at most 998 octets.
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998

    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["From"].startswith("Mail Delivery System <MAILER-DAEMON@")
    assert msg["Subject"] in ("Undelivered Mail Returned to Sender",
                              "Delayed Mail (still being retried)")
    assert not msg.defects

    parts = msg.get_payload()
    assert parts[0].get_content_type() == "text/plain"
    assert parts[1].get_content_type() == "message/delivery-status"
    assert len(parts) in (2, 3)

    # The delivery-status part: one per-message block, then one block per recipient.
    blocks = parts[1].get_payload()
    assert len(blocks) >= 2
    per_msg = blocks[0]
    assert per_msg["Reporting-MTA"].startswith("dns; ")
    assert per_msg["Arrival-Date"]
    delayed = msg["Subject"].startswith("Delayed")
    for rcpt in blocks[1:]:
        assert rcpt["Final-Recipient"].split(";")[0] in ("rfc822", "utf-8")
        assert rcpt["Action"] == ("delayed" if delayed else "failed")
        status = rcpt["Status"].split(".")
        assert status[0] in ("4", "5") and len(status) == 3
        if delayed:
            assert status[0] == "4"

    if len(parts) == 3:
        ctype = parts[2].get_content_type()
        assert ctype in ("message/rfc822", "text/rfc822-headers")
        if delayed:
            assert ctype == "text/rfc822-headers"
        if ctype == "message/rfc822":
            inner = parts[2].get_payload()[0]
            assert inner["Message-ID"]
