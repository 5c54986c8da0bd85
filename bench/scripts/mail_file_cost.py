#!/usr/bin/env python3
"""CPU cost of one e-mail in the file mail transport's shape (a new owner-only file per
message) against appending the same bytes to one open file, on the filesystem of DIR.

    python3 bench/scripts/mail_file_cost.py [DIR] [N]

Prints microseconds of process CPU (user + system) per message for each, three rounds each,
interleaved, in a fresh directory under DIR (default: target/). Used to size the file
transport's share of an order's CPU (BENCHMARKS.md, Pipeline).
"""
import os
import resource
import shutil
import sys
import tempfile

BODY = b"x" * 3000  # about the size of a confirmation e-mail (text + HTML parts)


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else "target"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    os.makedirs(base, exist_ok=True)
    root = tempfile.mkdtemp(prefix="mail-cost-", dir=base)
    try:
        for rnd in range(3):
            mail = os.path.join(root, f"mail{rnd}")
            os.makedirs(mail)
            start = cpu()
            for i in range(n):
                fd = os.open(os.path.join(mail, f"{i:024x}.eml"),
                             os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
                os.write(fd, BODY)
                os.close(fd)
            per_file = (cpu() - start) / n * 1e6
            fd = os.open(os.path.join(root, f"box{rnd}"),
                         os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
            start = cpu()
            for _ in range(n):
                os.write(fd, BODY)
            per_append = (cpu() - start) / n * 1e6
            os.close(fd)
            print(f"round {rnd + 1}: new file {per_file:.1f} us/e-mail, "
                  f"append {per_append:.1f} us/e-mail")
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
