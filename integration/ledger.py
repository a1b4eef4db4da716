#!/usr/bin/env python3
"""Read the ledgers herald-receiver writes: one JSON object per line.

Library (stdlib only):
    load(paths) -> list of records from all files, sorted by "t"
    delivered_fingerprints(records, receiver=None) -> Counter of the
        fingerprints of requests answered 2xx, optionally of one receiver

CLI:
    ledger.py summary FILE...

A fingerprint counted more than once in delivered_fingerprints() was
delivered twice: a duplicate. Status 0 means the receiver stopped before
answering; it is not a delivery.
"""

import collections
import json
import os
import sys
from collections import Counter  # Re-exported: harness.py uses it.


def load(paths):
    """Return the records of one path or a list of paths, oldest first.

    A final line without a newline is being written right now and is
    skipped; any other line that is not JSON raises ValueError naming it.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    records = []
    for path in paths:
        # Bodies are recorded as raw text and may hold invalid UTF-8.
        with open(path, encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                if not line.endswith("\n"):
                    break
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError("%s:%d: %s" % (path, lineno, e)) from e
    records.sort(key=lambda r: r.get("t", 0.0))
    return records


def is_delivered(record):
    """True when the receiver answered the request with a 2xx status."""
    return 200 <= record.get("status", 0) < 300


def delivered_fingerprints(records, receiver=None):
    """Count fingerprints of 2xx-answered requests, of one receiver or all."""
    counts = Counter()
    for r in records:
        if receiver is not None and r.get("receiver") != receiver:
            continue
        if is_delivered(r):
            counts.update(r.get("fingerprints", []))
    return counts


def summary(records, out=sys.stdout):
    """Print requests, statuses, fingerprints and duplicates per receiver."""
    by_receiver = collections.defaultdict(list)
    for r in records:
        by_receiver[r.get("receiver", "?")].append(r)
    for name in sorted(by_receiver):
        recs = by_receiver[name]
        statuses = collections.Counter(r.get("status", 0) for r in recs)
        seen = {fp for r in recs for fp in r.get("fingerprints", [])}
        delivered = delivered_fingerprints(recs)
        dups = sorted(fp for fp, n in delivered.items() if n > 1)
        print("receiver %s" % name, file=out)
        print("  requests      %d" % len(recs), file=out)
        print("  by status     %s" % " ".join(
            "%d=%d" % (s, n) for s, n in sorted(statuses.items())), file=out)
        print("  fingerprints  %d unique, %d delivered"
              % (len(seen), len(delivered)), file=out)
        print("  duplicates    %d%s" % (len(dups), "".join(
            "\n    %s x%d" % (fp, delivered[fp]) for fp in dups[:20])),
            file=out)
        if len(dups) > 20:
            print("    ... %d more" % (len(dups) - 20), file=out)


def main(argv):
    if len(argv) < 3 or argv[1] != "summary":
        print("usage: ledger.py summary FILE...", file=sys.stderr)
        return 2
    try:
        records = load(argv[2:])
    except (OSError, ValueError) as e:
        print("ledger.py: %s" % e, file=sys.stderr)
        return 1
    summary(records)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
