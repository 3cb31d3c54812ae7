"""Command-line launchers: ``python -m launch.<name>``.

Before a launcher imports anything, the process restarts itself once with
``GLIBC_TUNABLES=glibc.malloc.hugetlb=1`` (``use_huge_pages``). XLA CPU
allocates its buffers afresh at every step, and the kernel zero-fills new
memory page by page: with 4 KB pages the demo's train steps took 9,600
(coarse) to 41,000 (joint) page faults each, and a fifth (coarse) to a
third (joint) of their CPU time was the kernel's. glibc's malloc then asks
for 2 MB pages (where the kernel's transparent huge pages are 'madvise' or
'always'): 499-591 faults per step, the same numbers bit for bit
(BUILD_NOTES.md, issue 16). Without glibc (macOS) or with the tunable
already set, nothing happens; in your own Python process, set the variable
before starting Python.
"""

import os
import sys

HUGE_PAGES_TUNABLE = 'glibc.malloc.hugetlb=1'


def use_huge_pages(argv0: str, orig_argv: list[str], environ, execv) -> None:
  """Restarts ``python -m launch.<name>`` (``orig_argv``, by ``execv``)
  with the huge-pages tunable in ``environ``.

  Only for a launcher run as a module (``argv0`` is '-m' while Python
  imports the package of the module it runs), under glibc, and when
  GLIBC_TUNABLES does not set glibc.malloc.hugetlb already (a value of the
  user's is kept); other tunables of the user's are kept too.
  """
  if argv0 != '-m' or not _glibc():
    return
  tunables = environ.get('GLIBC_TUNABLES', '')
  if 'glibc.malloc.hugetlb=' in tunables:
    return
  environ['GLIBC_TUNABLES'] = ':'.join(
      filter(None, (tunables, HUGE_PAGES_TUNABLE)))
  execv(sys.executable, orig_argv)


def _glibc() -> bool:
  try:
    return bool(os.confstr('CS_GNU_LIBC_VERSION'))
  except (ValueError, OSError, AttributeError):
    return False


use_huge_pages(sys.argv[0], sys.orig_argv, os.environ, os.execv)
