"""Results for the report: grouping, exports, plots and the report itself."""
