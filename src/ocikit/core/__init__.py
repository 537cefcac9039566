"""The pure core: digests, references, transport references, platforms, media types, errors and
numbers from outside — the grammar and types every layer shares; imports nothing else of ocikit."""
