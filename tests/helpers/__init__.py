"""The one helpers package of the test suite (importable as ``helpers``: pyproject puts ``tests`` on ``sys.path``).

- :mod:`helpers.cli` — run the ``ocikit`` command: in a subprocess as a user does, or in-process;
- :mod:`helpers.peers` — find peer tools (``require``), run skopeo, read a digest through it;
- :mod:`helpers.servers` — real servers as subprocesses: Debian's docker-registry, ``ocikit serve``;
- :mod:`helpers.app_servers` — small aiohttp servers in a thread: any app, a token issuer, faulty proxies;
- :mod:`helpers.blobs` — big random blobs pushed to a registry, pulled and hashed, found in a serve root;
- :mod:`helpers.rawhttp` — a raw-HTTP registry client that speaks the Distribution spec as written;
- :mod:`helpers.images` — image sets that share layers, signatures (referrers) pushed to any store;
- :mod:`helpers.layers` — hand-made tar layers and images, tree snapshots compared field by field;
- :mod:`helpers.trust` — throwaway GPG keys, a registries.d naming a lookaside directory, images pushed for signing;
- :mod:`helpers.trees` — a tree of every kind of entry, snapshots for the build and tar writer tests.

The benches in ``bench/`` import :mod:`helpers.servers` too (they put ``tests`` on ``sys.path``).
"""
