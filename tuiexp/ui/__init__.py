"""The Textual dashboard. Never imports torch (tests/ui/test_imports.py checks)."""
