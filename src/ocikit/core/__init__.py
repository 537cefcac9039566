"""The pure core: digests, references, transport references, platforms, media types, errors,
numbers from outside and cron expressions — the grammar and types every layer shares; imports
nothing else of ocikit."""
