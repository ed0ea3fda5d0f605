"""Business logic of the poverty-alleviation dynamic-management campaign, importable without Airflow."""

import os

# Polars' allocator (jemalloc) hands freed memory back to the system within moments by default, so a workbook
# read, which allocates and frees column after column, pays a page fault for every page over and over:
# keeping freed pages for ten seconds makes a 100,000-member ingest about a fifth faster (bench/ingest.py prints
# the figure both ways). Read once, when Polars is first imported: this package is imported first. An
# operator's own setting wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:10000,muzzy_decay_ms:10000")
