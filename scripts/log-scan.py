#!/usr/bin/env python3
"""Proves that no token or secret appears in any service log line of a test run.

  log-scan.py DIR...       scan every *.log under each DIR (recursively) for the canaries of
                           DIR/canaries.txt (the secrets the test harness handed to the
                           services: platform::testing, BILLING_TEST_LOG_DIR) and for secrets
                           by shape: Stripe secret/restricted keys, webhook secrets, JWTs,
                           bearer tokens, the Stripe fake's OAuth refresh tokens and
                           authorization codes, card numbers (Luhn), CVC/CVV values
  log-scan.py --self-test  plant each kind of secret in a temporary log and check that it is
                           found, and that look-alikes (key hints, object ids) are not

Prints one line per finding (file:line, the kind, the secret masked) and a summary. Exits 1
on any finding, and also when no log line was scanned at all: a scan of nothing proves
nothing. Standard library only.
"""
from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from typing import Iterable, Iterator

CANARIES_FILE = "canaries.txt"

# Secrets recognisable by their shape. A key hint (`rk_test_…a1b2`, `whsec_…abcd`) has a
# non-ASCII ellipsis right after the prefix, so it never matches.
PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    # ≥ 4 after the prefix, not 8: the test suite's own `rk_test_fake` must count as a key.
    ("stripe key", re.compile(r"(?<![A-Za-z0-9])(?:sk|rk)_(?:live|test)_[A-Za-z0-9_]{4,}")),
    ("webhook secret", re.compile(r"(?<![A-Za-z0-9])whsec_[A-Za-z0-9_+/=]{6,}")),
    ("jwt", re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}")),
    ("bearer token", re.compile(r"(?i)(?<![A-Za-z0-9])bearer\s+[A-Za-z0-9._~+/=-]{8,}")),
    # The Stripe fake's OAuth grants: refresh tokens `rt_` + 32, codes `ac_` + 24 (access
    # tokens are `sk_test_oauth_…`, caught above).
    ("oauth refresh token", re.compile(r"(?<![A-Za-z0-9])rt_[A-Za-z0-9]{24,}")),
    ("oauth authorization code", re.compile(r"(?<![A-Za-z0-9])ac_[A-Za-z0-9]{20,}")),
    ("cvc", re.compile(r"(?i)(?<![A-Za-z0-9])(?:cvc|cvv)2?[\"']?\s*[:=]\s*[\"']?\d{3,4}(?!\d)")),
]

# 13–19 digits, single spaces or dashes allowed between them, not part of a longer word or
# number (hex trace ids, decimals). Luhn and a card network's number range decide; without the
# latter every tenth number would be a "card": epoch milliseconds (1…), migration versions and
# other compact timestamps (20261201000100).
CARD_CANDIDATE = re.compile(r"(?<![A-Za-z0-9_.])[2-6](?:[ -]?\d){12,18}(?![A-Za-z0-9_]|\.\d)")
# Visa 4; Mastercard 51–55 and 2221–2720; Amex 34, 37; Diners 30, 36, 38, 39; JCB 35;
# Discover, UnionPay and others 6; Maestro 50, 56–58.
CARD_PREFIX = re.compile(r"^(?:4|5[0-8]|222[1-9]|22[3-9]\d|2[3-6]\d\d|27[01]\d|2720|3[0456789]|6)")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_numbers(line: str) -> Iterator[str]:
    for m in CARD_CANDIDATE.finditer(line):
        digits = re.sub(r"[ -]", "", m.group())
        if 13 <= len(digits) <= 19 and CARD_PREFIX.match(digits) and luhn_ok(digits):
            yield m.group()


def mask(kind: str, secret: str) -> str:
    """Enough to recognise which secret leaked, never enough to use it."""
    if kind == "card number":
        digits = re.sub(r"[ -]", "", secret)
        return f"{'*' * (len(digits) - 4)}{digits[-4:]}"
    if kind == "cvc":
        return re.sub(r"\d", "*", secret)
    prefix = re.match(r"(?i)(bearer\s+)?([a-z]+_(?:live_|test_)?)?", secret)
    keep = prefix.group() if prefix and prefix.group() else secret[:3]
    return f"{keep}…[{len(secret)} chars]"


@dataclass
class Finding:
    path: str
    line: int
    kind: str
    masked: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}: {self.masked}"


class Scanner:
    def __init__(self, canaries: Iterable[str]):
        variants: dict[str, str] = {}
        for canary in canaries:
            # As written, and as a JSON log line or a URL-encoded query would carry it.
            for form in (canary, json.dumps(canary)[1:-1], urllib.parse.quote(canary, safe="")):
                variants.setdefault(form, canary)
        self.canaries = variants
        self.canary_re = (
            re.compile("|".join(re.escape(v) for v in sorted(variants, key=len, reverse=True)))
            if variants
            else None
        )
        self.files = 0
        self.lines = 0

    def scan_line(self, line: str) -> Iterator[tuple[str, str]]:
        if self.canary_re is not None:
            for m in self.canary_re.finditer(line):
                yield "canary (a secret the test handed the service)", mask("canary", self.canaries[m.group()])
        for kind, pattern in PATTERNS:
            for m in pattern.finditer(line):
                yield kind, mask(kind, m.group())
        for number in card_numbers(line):
            yield "card number", mask("card number", number)

    def scan_file(self, path: str) -> list[Finding]:
        found = []
        self.files += 1
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                self.lines += 1
                seen = set()
                for kind, masked in self.scan_line(line):
                    if (kind, masked) not in seen:
                        seen.add((kind, masked))
                        found.append(Finding(path, n, kind, masked))
        return found


def read_canaries(dirs: list[str]) -> list[str]:
    out: list[str] = []
    for d in dirs:
        path = os.path.join(d, CANARIES_FILE)
        if os.path.exists(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                out.extend(line.rstrip("\n") for line in f if len(line.strip()) >= 8)
    return sorted(set(out))


def log_files(dirs: list[str]) -> list[str]:
    files = []
    for d in dirs:
        for root, _, names in os.walk(d):
            files.extend(os.path.join(root, n) for n in names if n.endswith(".log"))
    return sorted(files)


def scan(dirs: list[str], out=sys.stdout) -> int:
    started = time.monotonic()
    missing = [d for d in dirs if not os.path.isdir(d)]
    if missing:
        print(f"log-scan: no such directory: {', '.join(missing)}", file=out)
        return 1
    canaries = read_canaries(dirs)
    scanner = Scanner(canaries)
    findings: list[Finding] = []
    for path in log_files(dirs):
        findings.extend(scanner.scan_file(path))
    for finding in findings:
        print(finding, file=out)
    print(
        f"log-scan: {scanner.files} files, {scanner.lines} lines, {len(canaries)} canaries, "
        f"{len(findings)} findings ({time.monotonic() - started:.1f} s)",
        file=out,
    )
    if scanner.lines == 0:
        print("log-scan: FAILED: no log line was scanned (were BILLING_TEST_LOG_DIR and the "
              "services' logging set up?)", file=out)
        return 1
    if findings:
        print("log-scan: FAILED: secrets in service logs (no token may ever be logged)", file=out)
        return 1
    return 0


# --- self-test -------------------------------------------------------------------------------

PLANTED = {
    # kind -> a log line carrying one secret of that kind
    "stripe key": '{"level":"WARN","fields":{"message":"stripe call failed","key":"rk_test_51HabcdefghijKLMN"}}',
    "webhook secret": "WARN ingress: verifying with whsec_e2e_only failed",
    "jwt": "INFO query_api: token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjc20tYW5uIn0.dGhpc2lzYXNpZ25hdHVyZQ refused",
    "bearer token": '{"fields":{"authorization":"Bearer abcdefghijklmnop"}}',
    "oauth refresh token": "refreshing with rt_Ab3dEf6hIj9kLm2oPq5sTu8wXy1zAb4d",
    "oauth authorization code": "GET /api/integrations/stripe/callback?code=ac_Ab3dEf6hIj9kLm2oPq5sTu8w&state=x",
    "card number": "payment method 4242 4242 4242 4242 attached",
    "cvc": '{"card":{"exp_month":12,"cvc":"123"}}',
    "canary (a secret the test handed the service)": "loaded keys k1:QUJDREVGR0hJSktMTU5PUA== for tenant",
}
CANARY = "QUJDREVGR0hJSktMTU5PUA=="
MORE_PLANTED = [
    # Assembled here so no live-looking key stands in the repository for other scanners.
    ("stripe key", "connecting as " + "sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc"),
    ("stripe key", "oauth access sk_test_oauth_Ab3dEf6hIj9kLm2oPq5sTu8wXy1zAb4d"),
    ("card number", "number=378282246310005 (amex)"),
    ("card number", "card 5555-5555-5555-4444"),
    ("card number", "mastercard 2223003122003222"),
    ("card number", "jcb 3566002020360505 / discover 6011111111111117"),
    ("cvc", "cvv=4321"),
    ("canary (a secret the test handed the service)", "url-encoded master=QUJDREVGR0hJSktMTU5PUA%3D%3D"),
]
CLEAN = [
    '{"fields":{"message":"stored key","hint":"rk_test_…ake"}}',
    "alert webhook secret whsec_…abcd created",
    "customer cus_123 linked to acc_acme; event evt_1NqXyz2eZvKYlo2C received",
    "invoice in_00000aBcDeFgHi paid, charge ch_00000aBcDeFgHi, account acct_1ABCDEF",
    "processed 123456789012 bytes",  # 12 digits
    "id 4242424242424241 is not a card",  # 16 digits, fails Luhn
    '{"timestamp":"2026-12-04T18:53:00.123456Z","elapsed_ms":1733333333333}',  # epoch ms, Luhn-valid
    '"applied":"[\\"20261125000000\\", \\"20261201000100\\"]"',  # migration versions, Luhn-valid
    "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
    "duration 0.4242424242424242 s",
    '{"card":{"last4":"4242","cvc_check":"pass","brand":"visa"}}',
    '"token_type":"bearer","scope":"read_only"',
    "webhook refused: reason=signature mismatch (expected whsec_ secret)",
    "payment_intent pi_3MtwBwLkdIwHu7ix28a3tqPa, refund re_00000aBcDeFgHi",
]


def exposes(masked: str, line: str) -> bool:
    """Whether a mask shows 5 or more characters of the secret past its kept prefix."""
    shown = masked.split("…", 1)[-1]
    return any(
        shown[i : i + 5].isalnum() and shown[i : i + 5] in line for i in range(len(shown) - 4)
    )


def self_test() -> int:
    results: list[str | None] = []  # None: passed; else what failed

    def check(ok: bool, what: str) -> None:
        results.append(None if ok else what)

    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, CANARIES_FILE), "w") as f:
            f.write(CANARY + "\nshort\n")
        scanner = Scanner(read_canaries([d]))
        check("short" not in scanner.canaries, "a canary shorter than 8 chars was used")
        for kind, line in list(PLANTED.items()) + MORE_PLANTED:
            found = list(scanner.scan_line(line))
            check(kind in [k for k, _ in found], f"not found: {kind} in {line!r} (found {found})")
            check(not [m for _, m in found if exposes(m, line)], f"not masked: {found}")
        for line in CLEAN:
            found = list(scanner.scan_line(line))
            check(not found, f"false positive in {line!r}: {found}")

        # Whole runs: exit codes and the file:line report.
        class Capture(list):
            def write(self, s):
                self.append(s)

        check(scan([d], out=Capture()) == 1, "a directory without log lines passed")
        with open(os.path.join(d, "matcher-1.log"), "w") as f:
            f.write("\n".join(CLEAN) + "\n")
        check(scan([d], out=Capture()) == 0, "clean logs failed")
        with open(os.path.join(d, "ingress-2.log"), "w") as f:
            f.write("ok\n" + PLANTED["webhook secret"] + "\n")
        report = Capture()
        check(scan([d], out=report) == 1, "a leaked secret passed")
        check(any("ingress-2.log:2: webhook secret: whsec_…" in s for s in report),
              f"finding not reported as file:line: {''.join(report)!r}")
        check(not any("whsec_e2e_only" in s for s in report), "the report itself shows the secret")
        check(scan([os.path.join(d, "missing")], out=Capture()) == 1, "a missing directory passed")
    failed = [r for r in results if r is not None]
    for what in failed:
        print(f"log-scan self-test: {what}")
    print(f"log-scan self-test: {len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if argv == ["--self-test"]:
        return self_test()
    if not argv or any(a.startswith("-") for a in argv):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return scan(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
