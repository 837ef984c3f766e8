"""A PDF read back as poppler reads it (``pdftotext``, ``pdfinfo`` from poppler-utils)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def pdf_text(path: Path) -> str:
    """The PDF's text, layout kept (a table row per line)."""
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          text=True, timeout=60, check=True).stdout


def pdf_info(path: Path) -> str:
    """Its metadata, custom keys included."""
    return subprocess.run(["pdfinfo", "-custom", str(path)], capture_output=True, text=True,
                          timeout=60, check=True).stdout
