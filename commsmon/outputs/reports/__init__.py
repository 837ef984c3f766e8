"""What the bureau reports upward: figures counted from the history by the stated,
versioned accounting rules, written as XLSX (and, later, PDF)."""
