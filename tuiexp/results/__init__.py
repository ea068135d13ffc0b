"""Results for the report, read through store.query.

- grouping: which runs are one experiment point; mean ± std over seeds
- export: tables as CSV, Markdown, LaTeX, JSON; plots: curves, accuracy against
  size, confusion; report: a Markdown report folder with its tables and figures
"""
