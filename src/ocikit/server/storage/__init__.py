"""Storage drivers and the registry storage layout."""
