"""Parses a /metrics scrape with the Prometheus project's own OpenMetrics parser
(PyPI: prometheus-client) and checks every metric name against Prometheus' naming rules.

Usage: python3 tests/python/check_metrics.py < scrape.txt

Prints one line per metric family, `name type samples`; exits non-zero if the text does
not parse or a name breaks the rules.
"""

import re
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def main():
    text = sys.stdin.read()
    for family in text_string_to_metric_families(text):
        if not NAME.match(family.name) or not family.name.startswith("eddy_"):
            sys.exit(f"bad metric name: {family.name}")
        for sample in family.samples:
            for label in sample.labels:
                if not LABEL.match(label) or label.startswith("__"):
                    sys.exit(f"bad label name {label} in {sample.name}")
        print(family.name, family.type, len(family.samples))


if __name__ == "__main__":
    main()
