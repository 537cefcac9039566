"""Signatures and trust: cosign keys, sigstore and GPG simple signing, lookaside stores,
containers-policy.json evaluation, and carrying signatures through a copy.

Modules: :mod:`keys` (cosign key pairs), :mod:`payload` (the simple-signing payload),
:mod:`sigstore` (cosign's tag schema), :mod:`bundle` (sigstore bundles as OCI 1.1 referrers),
:mod:`simplesign` (GPG through the ``gpg`` binary), :mod:`lookaside` (registries.d and
lookaside stores), :mod:`identity` (signedIdentity rules), :mod:`policy` (containers-policy.json),
:mod:`collect` (finding every signature of an image), :mod:`verify`, :mod:`sign` and :mod:`carry`.
"""
