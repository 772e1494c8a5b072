"""Run a command and write its wall time, CPU and peak RSS to a JSON file, from a process too small to skew them.

``python -I -S measured.py OUT.json COMMAND ...``. Linux carries the memory image a process had before ``exec``
into its peak RSS (``ru_maxrss``), and Python starts children with ``vfork``, so a child of a big parent (a
benchmark that has imported the SDK, or ``scripts/bench`` after planning a million files) reports at least the
parent's RSS. Started from this launcher, which holds only the standard library, the command's own figures are
what is left: ``wait4`` on it gives its process tree's user + system CPU and its peak RSS.
"""
import json
import os
import subprocess
import sys
import time

out, command = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
child = subprocess.Popen(command)
_pid, status, usage = os.wait4(child.pid, 0)
with open(out, 'w') as handle:
    json.dump({'exit': os.waitstatus_to_exitcode(status), 'wall_s': time.perf_counter() - started,
               'cpu_s': usage.ru_utime + usage.ru_stime, 'peak_kb': usage.ru_maxrss}, handle)
