"""The record: run directories and the index over them (no Textual, no torch)."""
