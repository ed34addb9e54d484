"""The ``semtoken-rag`` command line."""
