// sigstore-js as a peer of ocikit: verify a sigstore bundle with a public key alone
// (no transparency log, no timestamps), as @sigstore/verify does for key-based signing.
//   node verify_bundle.js BUNDLE.json PUBLIC_KEY.pem [ARTIFACT]
// Prints the verified statement's subjects (DSSE) and exits 0, or prints the error and exits 1.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const { bundleFromJSON } = require('@sigstore/bundle');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

function main() {
  const [bundlePath, keyPath, artifactPath] = process.argv.slice(2);
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, 'utf8')));
  const der = crypto.createPublicKey(fs.readFileSync(keyPath)).export({ format: 'der', type: 'spki' });
  const hint = bundle.verificationMaterial.content.publicKey.hint;
  const root = { certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [] };
  const trust = toTrustMaterial(root, { [hint]: { rawBytes: der } });
  const verifier = new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
  const artifact = artifactPath ? fs.readFileSync(artifactPath) : undefined;
  verifier.verify(toSignedEntity(bundle, artifact));
  const out = { verified: true, content: bundle.content.$case };
  if (bundle.content.$case === 'dsseEnvelope') {
    out.statement = JSON.parse(bundle.content.dsseEnvelope.payload.toString());
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

try { main(); } catch (e) { console.error(`${e.code || e.name}: ${e.message}`); process.exit(1); }
