"""scripts/audit.py's decision on canned pip-audit and npm audit reports (the JSON those tools
print): what fails `make test`, what only warns. The real audit runs as a pass of `make test`."""

from __future__ import annotations

import datetime
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

TODAY = datetime.date(2026, 12, 3)


def _load() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "scripts" / "audit.py"
    spec = importlib.util.spec_from_file_location("audit_script", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


audit = _load()


def _pip_report(*vulns: dict[str, Any]) -> dict[str, Any]:
    """pip-audit 2.10's `--format json --skip-editable` output, as it prints it."""
    return {
        "dependencies": [
            {"name": "microfactory", "skip_reason": "distribution marked as editable"},
            {"name": "django", "version": "5.2.19", "vulns": list(vulns)},
            {"name": "segno", "version": "1.6.6", "vulns": []},
        ],
        "fixes": [],
    }


FIXABLE = {
    "id": "PYSEC-2026-101",
    "fix_versions": ["5.2.20"],
    "aliases": ["CVE-2026-1234", "GHSA-aaaa-bbbb-cccc"],
    "description": "SQL injection in ...",
}
NO_FIX = {"id": "GHSA-xxxx-yyyy-zzzz", "fix_versions": [], "aliases": [], "description": "..."}


def test_fixable_vulnerability_fails_naming_the_package_and_the_fixed_version() -> None:
    findings, unaudited = audit.pip_findings(_pip_report(FIXABLE))
    verdict = audit.decide(findings, {})

    assert not verdict.ok
    assert [(f.package, f.version, f.fixed_in) for f in verdict.failures] == [
        ("django", "5.2.19", ("5.2.20",))
    ]
    assert "django 5.2.19: PYSEC-2026-101, CVE-2026-1234" in verdict.failures[0].describe()
    assert "fixed in 5.2.20" in verdict.failures[0].describe()
    assert unaudited == []  # the editable project is skipped on purpose, not "unaudited"


def test_vulnerability_without_fix_is_a_warning_only() -> None:
    findings, _ = audit.pip_findings(_pip_report(NO_FIX))
    verdict = audit.decide(findings, {})

    assert verdict.ok
    assert [f.vuln_id for f in verdict.warnings] == ["GHSA-xxxx-yyyy-zzzz"]
    assert "no fix yet" in verdict.warnings[0].describe()


def test_clean_report_passes() -> None:
    findings, _ = audit.pip_findings(_pip_report())
    verdict = audit.decide(findings, {})

    assert verdict.ok and findings == [] and verdict.warnings == ()


def test_no_package_audited_is_unreachable_not_clean() -> None:
    """What PyPI's per-version JSON answering 404 looks like: pip-audit prints "No known
    vulnerabilities found" and exits 0, with every package skipped."""
    report = {
        "dependencies": [
            {"name": "microfactory", "skip_reason": "distribution marked as editable"},
            {
                "name": "django",
                "skip_reason": "Dependency not found on PyPI and could not be audited: "
                "django (5.2.19)",
            },
        ],
        "fixes": [],
    }
    with pytest.raises(audit.Unreachable, match="none of the 1 packages"):
        audit.pip_findings(report)


def test_one_package_missing_from_pypi_is_reported_not_fatal() -> None:
    report = _pip_report()
    report["dependencies"].append(
        {
            "name": "localwheel",
            "skip_reason": "Dependency not found on PyPI and could not be audited",
        }
    )
    findings, unaudited = audit.pip_findings(report)

    assert findings == [] and len(unaudited) == 1 and unaudited[0].startswith("localwheel")


def test_ignore_entry_matches_an_alias_and_lets_a_fixable_one_pass() -> None:
    ignore = audit.ignore_parse(
        "# comment\n\ncve-2026-1234  # only the admin's own upload path, until 2027-01-31\n",
        today=TODAY,
    )
    findings, _ = audit.pip_findings(_pip_report(FIXABLE))
    verdict = audit.decide(findings, ignore)

    assert verdict.ok
    [(finding, entry)] = verdict.ignored
    assert finding.vuln_id == "PYSEC-2026-101"
    assert entry.until == datetime.date(2027, 1, 31)
    assert entry.reason == "only the admin's own upload path"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("CVE-2026-1234  # accepted, until 2026-12-02", "expired on 2026-12-02"),
        ("CVE-2026-1234", "expected `ID  # reason, until YYYY-MM-DD`"),
        ("CVE-2026-1234  # no expiry given", "expected"),
        ("CVE-2026-1234  # , until 2027-01-01", "expected"),
        ("CVE-2026-1234  # reason, until 2027-02-30", "not a date"),
    ],
)
def test_expired_or_malformed_ignore_entry_is_refused(line: str, message: str) -> None:
    with pytest.raises(audit.IgnoreFileError, match=message):
        audit.ignore_parse(line + "\n", today=TODAY)


def test_entry_valid_through_its_last_day() -> None:
    assert "CVE-1" in audit.ignore_parse("cve-1  # reason, until 2026-12-03", today=TODAY)


def test_committed_ignore_file_is_valid() -> None:
    audit.ignore_parse(audit.IGNORE_FILE.read_text(), today=datetime.date.today())


NPM_REPORT = {
    "auditReportVersion": 2,
    "vulnerabilities": {
        "three": {
            "name": "three",
            "severity": "high",
            "isDirect": True,
            "via": [
                {
                    "source": 1100001,
                    "name": "three",
                    "title": "Prototype pollution in loader",
                    "url": "https://github.com/advisories/GHSA-1111-2222-3333",
                    "severity": "high",
                    "range": "<0.188.0",
                }
            ],
            "range": "<0.188.0",
            "fixAvailable": {"name": "three", "version": "0.188.0", "isSemVerMajor": False},
        },
        "htmx.org": {
            "name": "htmx.org",
            "severity": "moderate",
            "isDirect": True,
            "via": [
                {
                    "source": 1100002,
                    "name": "htmx.org",
                    "title": "XSS in hx-on",
                    "url": "https://github.com/advisories/GHSA-4444-5555-6666",
                    "severity": "moderate",
                    "range": "<=2.0.11",
                },
                "some-transitive-package",
            ],
            "range": "<=2.0.11",
            "fixAvailable": False,
        },
    },
    "metadata": {"vulnerabilities": {"total": 2}},
}


def test_npm_fix_available_fails_and_no_fix_warns() -> None:
    verdict = audit.decide(audit.npm_findings(NPM_REPORT), {})

    assert [(f.package, f.vuln_id, f.fixed_in) for f in verdict.failures] == [
        ("three", "GHSA-1111-2222-3333", ("three@0.188.0",))
    ]
    assert [(f.package, f.vuln_id) for f in verdict.warnings] == [
        ("htmx.org", "GHSA-4444-5555-6666")
    ]


def test_npm_clean_report_passes() -> None:
    report = {"auditReportVersion": 2, "vulnerabilities": {}, "metadata": {}}
    assert audit.decide(audit.npm_findings(report), {}).ok


def test_npm_error_object_is_unreachable() -> None:
    """What npm prints when the registry refuses the bulk advisory endpoint."""
    report = {
        "message": "405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk",
        "statusCode": 405,
    }
    with pytest.raises(audit.Unreachable, match="405 Method Not Allowed"):
        audit.npm_findings(report)
