"""Scan the template, translated to CloudFormation, with checkov; fail on any unjustified finding.

A finding is justified when the resource it names carries `Metadata: checkov: skip: [{id, comment}]`
in infra/template.yaml with a real reason (at least MIN_REASON characters). Anything else fails:
a failed check, a skip without a reason, a parsing error.

  .venv-checkov/bin/python local/scan_template.py target/template.cfn.json
"""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

MIN_REASON = 40


def main() -> int:
    template = Path(sys.argv[1])
    checkov = Path(sys.executable).parent / "checkov"
    run = subprocess.run(
        [str(checkov), "-f", str(template), "--framework", "cloudformation", "-o", "json", "--skip-download", "--compact"],
        capture_output=True,
        text=True,
    )
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        print(run.stdout[-2000:], run.stderr[-2000:], sep="\n", file=sys.stderr)
        print("checkov did not produce a report", file=sys.stderr)
        return 1
    summary, results = report["summary"], report["results"]
    problems = []
    for c in results.get("failed_checks", []):
        problems.append(f"FAILED {c['check_id']} on {c['resource']}: {c['check_name']}")
    skipped = results.get("skipped_checks", [])
    for c in skipped:
        reason = (c.get("check_result", {}).get("suppress_comment") or "").strip()
        if len(reason) < MIN_REASON:
            problems.append(f"UNJUSTIFIED skip {c['check_id']} on {c['resource']}: reason {reason!r} is too short")
    if summary.get("parsing_errors"):
        problems.append(f"{summary['parsing_errors']} parsing errors")

    by_check = Counter(c["check_id"] for c in skipped)
    print(f"checkov {summary['checkov_version']}: {summary['passed']} passed, {summary['failed']} failed, "
          f"{summary['skipped']} skipped with a reason in the template, over {summary['resource_count']} resources")
    for check, count in sorted(by_check.items()):
        print(f"  skipped {check} x{count}")
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
