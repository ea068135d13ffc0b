"""The record: run directories, and the SQLite index over them (no Textual, no torch).

- paths: every file name of a logs directory and a run directory
- atomic: writes a reader sees whole or not at all; the file-mode policy
- events: the event log format (docs/EVENTS.md)
- spec: `RunSpec`, the frozen spec of a run (run.json)
- runstore: creating run directories; a run's status derived from its directory
- notes: a run's note and tags (annotations.json)
- metrics: the naming rule, per-key summaries, which metric is "best"
- series: bounded min/max buckets, live and backfilled alike
- lock: the one-supervisor lock of a logs directory
- schema, ingest, index: the index's tables and connection, folding event logs in,
  and the queue's writes and the reads
- query: the one read model every view reads runs through
"""
