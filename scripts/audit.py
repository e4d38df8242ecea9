"""Dependency audit, a pass of `make test`: known vulnerabilities in what we install.

    .venv/bin/python scripts/audit.py

1. pip-audit over the virtualenv as installed (our pins, what they pull in, and the dev tools:
   pytest, mypy, ruff... run on every developer's machine and in CI too), against PyPI's own
   vulnerability data (`--vulnerability-service pypi`; OSV is not reachable from our
   machines). The project itself (installed editable) is skipped.
2. npm audit over package-lock.json without dev dependencies: three.js and htmx, which
   scripts/build-assets.sh copies into microfactory/static/vendor/ and every page loads.

Fails when a vulnerability has a fix available (a fixed version on PyPI, npm's fixAvailable):
upgrade the pin. Vulnerabilities without a fix are printed as warnings: there is nothing to
upgrade to yet. An entry in .audit-ignore (`ID  # reason, until YYYY-MM-DD`, the ID being the
advisory's id or any alias: PYSEC-..., GHSA-..., CVE-...) lets a fixable one pass until its
date; an expired or malformed entry fails the audit.

A failed call is tried once more (a network hiccup). A service that cannot be reached at all,
or that answers without audit data (PyPI's per-version JSON giving 404 for every package, npm's
bulk advisory endpoint refused), is reported in a banner and does not fail the pass unless
AUDIT_UNREACHABLE=fail: the registries our machines and CI reach serve packages, not always
the audit endpoints, and a pass that can never succeed there would stop every merge. See
docs/operations.md, "Dependency audit".
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
IGNORE_FILE = ROOT / ".audit-ignore"
RETRY_DELAY_S = 5.0
COMMAND_TIMEOUT_S = 600.0
T = TypeVar("T")

PIP_AUDIT = (
    "-m",
    "pip_audit",
    "--vulnerability-service",
    "pypi",
    "--format",
    "json",
    "--skip-editable",
    "--progress-spinner",
    "off",
)
NPM_AUDIT = ("npm", "audit", "--omit=dev", "--json")

IGNORE_LINE = re.compile(
    r"^(?P<id>\S+)\s+#\s*(?P<reason>.*?),?\s+until\s+(?P<until>\d{4}-\d{2}-\d{2})\s*$"
)


class Unreachable(Exception):
    """The audit service gave no audit data (after the retry)."""


class IgnoreFileError(Exception):
    """.audit-ignore has a malformed or expired entry."""


@dataclass(frozen=True)
class Finding:
    ecosystem: str  # "PyPI" or "npm"
    package: str
    version: str
    vuln_id: str
    aliases: tuple[str, ...]
    fixed_in: tuple[str, ...]  # empty: no fix published
    fixable: bool

    def describe(self) -> str:
        ids = ", ".join((self.vuln_id, *self.aliases))
        fix = f"fixed in {', '.join(self.fixed_in)}" if self.fixed_in else "fix available"
        if not self.fixable:
            fix = "no fix yet"
        return f"{self.ecosystem} {self.package} {self.version}: {ids} ({fix})"


@dataclass(frozen=True)
class IgnoreEntry:
    vuln_id: str
    reason: str
    until: datetime.date


@dataclass(frozen=True)
class Verdict:
    failures: tuple[Finding, ...]
    warnings: tuple[Finding, ...]
    ignored: tuple[tuple[Finding, IgnoreEntry], ...]

    @property
    def ok(self) -> bool:
        return not self.failures


def ignore_parse(text: str, *, today: datetime.date) -> dict[str, IgnoreEntry]:
    """The entries of .audit-ignore by id. Every entry needs a reason and an expiry: an
    exception nobody revisits is a vulnerability accepted for good."""
    entries: dict[str, IgnoreEntry] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = IGNORE_LINE.match(line)
        if match is None or not match["reason"].strip():
            problems.append(f"line {number}: expected `ID  # reason, until YYYY-MM-DD`: {line}")
            continue
        try:
            until = datetime.date.fromisoformat(match["until"])
        except ValueError:
            problems.append(f"line {number}: not a date: {match['until']}")
            continue
        if until < today:
            problems.append(
                f"line {number}: {match['id']} expired on {until}: upgrade the package, or "
                "review the reason and set a new date"
            )
            continue
        entries[match["id"].upper()] = IgnoreEntry(match["id"], match["reason"].strip(), until)
    if problems:
        raise IgnoreFileError("\n".join(problems))
    return entries


def pip_findings(report: Mapping[str, Any]) -> tuple[list[Finding], list[str]]:
    """Findings from `pip-audit --format json`, and the packages PyPI gave no data for.

    Raises Unreachable when PyPI answered for none of them: pip-audit itself then says
    "No known vulnerabilities found" and exits 0, a green that means nothing was checked."""
    findings: list[Finding] = []
    unaudited: list[str] = []
    audited = 0
    for dependency in report.get("dependencies", []):
        name = str(dependency.get("name", "?"))
        reason = dependency.get("skip_reason")
        if reason is not None:
            if "editable" not in str(reason):
                unaudited.append(f"{name}: {reason}")
            continue
        audited += 1
        for vuln in dependency.get("vulns", []):
            fixed_in = tuple(str(v) for v in vuln.get("fix_versions") or ())
            findings.append(
                Finding(
                    ecosystem="PyPI",
                    package=name,
                    version=str(dependency.get("version", "?")),
                    vuln_id=str(vuln.get("id", "?")),
                    aliases=tuple(str(a) for a in vuln.get("aliases") or ()),
                    fixed_in=fixed_in,
                    fixable=bool(fixed_in),
                )
            )
    if audited == 0 and unaudited:
        raise Unreachable(
            f"PyPI gave vulnerability data for none of the {len(unaudited)} packages "
            f"(first: {unaudited[0]})"
        )
    return findings, unaudited


def npm_findings(report: Mapping[str, Any]) -> list[Finding]:
    """Findings from `npm audit --json` (npm 7 and later): one per advisory and package.

    A report without "vulnerabilities" is npm's error object (the advisory endpoint refused
    or could not be reached): Unreachable."""
    if "vulnerabilities" not in report:
        message = report.get("message") or report.get("error", {}).get("summary") or report
        raise Unreachable(f"npm audit gave no report: {message}")
    findings: list[Finding] = []
    for name, entry in report["vulnerabilities"].items():
        fixable = bool(entry.get("fixAvailable"))
        fix = entry.get("fixAvailable")
        fixed_in = (f"{fix['name']}@{fix['version']}",) if isinstance(fix, dict) else ()
        for via in entry.get("via", []):
            # A string names another vulnerable package this one depends on: that package
            # has its own entry, with the advisory.
            if not isinstance(via, dict):
                continue
            url = str(via.get("url", ""))
            advisory = url.rstrip("/").rsplit("/", 1)[-1] or str(via.get("source", "?"))
            findings.append(
                Finding(
                    ecosystem="npm",
                    package=str(name),
                    version=str(entry.get("range", "?")),
                    vuln_id=advisory,
                    aliases=(),
                    fixed_in=fixed_in,
                    fixable=fixable,
                )
            )
    return findings


def decide(findings: Iterable[Finding], ignore: Mapping[str, IgnoreEntry]) -> Verdict:
    """Fixable and not ignored: failure. No fix: warning. An ignore entry covers either."""
    failures: list[Finding] = []
    warnings: list[Finding] = []
    ignored: list[tuple[Finding, IgnoreEntry]] = []
    for finding in findings:
        entry = next(
            (ignore[i.upper()] for i in (finding.vuln_id, *finding.aliases) if i.upper() in ignore),
            None,
        )
        if entry is not None:
            ignored.append((finding, entry))
        elif finding.fixable:
            failures.append(finding)
        else:
            warnings.append(finding)
    return Verdict(tuple(failures), tuple(warnings), tuple(ignored))


def _report(command: Sequence[str], *, what: str) -> dict[str, Any]:
    """The JSON report an audit command prints (pip-audit and npm audit both exit non-zero
    when they find something, so the exit status alone says nothing)."""
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unreachable(f"{what}: {exc}") from exc
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise Unreachable(
            f"{what}: exit {done.returncode}: {lines[-1] if lines else 'no output'}"
        ) from None
    if not isinstance(report, dict):
        raise Unreachable(f"{what}: exit {done.returncode}: {str(report)[:300]}")
    return report


def _audit(command: Sequence[str], *, what: str, parse: Callable[[dict[str, Any]], T]) -> T:
    """Runs and parses; tried once more after a pause when the service gave no data (a
    network hiccup should not fail the pass, an outage still shows)."""
    try:
        return parse(_report(command, what=what))
    except Unreachable as first:
        print(f"audit: {first}; trying once more in {RETRY_DELAY_S:.0f} s")
        time.sleep(RETRY_DELAY_S)
        return parse(_report(command, what=what))


def main(argv: Sequence[str] | None = None) -> int:
    del argv  # no options: the behaviour is the same on every machine
    today = datetime.date.today()
    try:
        text = IGNORE_FILE.read_text() if IGNORE_FILE.exists() else ""
        ignore = ignore_parse(text, today=today)
    except IgnoreFileError as exc:
        print(f"audit: FAILED: {IGNORE_FILE.name} has entries that cannot be used:\n{exc}")
        return 1

    findings: list[Finding] = []
    unreachable: list[str] = []
    audited: list[str] = []
    started = time.monotonic()
    try:
        pip, unaudited = _audit(
            (sys.executable, *PIP_AUDIT), what="pip-audit (PyPI)", parse=pip_findings
        )
        findings += pip
        audited.append("PyPI")
        for line in unaudited:
            print(f"audit: warning: not audited: {line}")
    except Unreachable as exc:
        unreachable.append(str(exc))
    try:
        findings += _audit(NPM_AUDIT, what="npm audit", parse=npm_findings)
        audited.append("npm")
    except Unreachable as exc:
        unreachable.append(str(exc))

    verdict = decide(findings, ignore)
    for finding, entry in verdict.ignored:
        print(f"audit: ignored until {entry.until} ({entry.reason}): {finding.describe()}")
    for finding in verdict.warnings:
        print(f"audit: warning: {finding.describe()}")
    for finding in verdict.failures:
        print(f"audit: VULNERABLE: {finding.describe()}")
    print(
        f"audit: audited {' and '.join(audited) or 'nothing'}: "
        f"{len(verdict.failures)} fixable, {len(verdict.warnings)} without a fix, "
        f"{len(verdict.ignored)} ignored ({time.monotonic() - started:.0f} s)"
    )

    strict = os.environ.get("AUDIT_UNREACHABLE", "warn") == "fail"
    if unreachable:
        banner = "!" * 78
        print(banner)
        print("audit: DEPENDENCY AUDIT NOT DONE: the vulnerability service could not be used:")
        for line in unreachable:
            print(f"  - {line}")
        print(
            "  The packages themselves were not checked. "
            + (
                "AUDIT_UNREACHABLE=fail: failing."
                if strict
                else "Set AUDIT_UNREACHABLE=fail to fail here."
            )
        )
        print(banner)
    if not verdict.ok:
        print('audit: upgrade the pins above (docs/operations.md, "Dependency audit")')
        return 1
    return 1 if unreachable and strict else 0


if __name__ == "__main__":
    sys.exit(main())
