// sigstore-js as a peer of ocikit: sign an image key-based (no Fulcio, no Rekor) and attach the
// bundle to it on a registry with @sigstore/oci.
//   node sign_attach.js REGISTRY/REPO DIGEST PRIVATE_KEY.pem [dsse|message]
// dsse: a DSSE envelope over an in-toto statement naming REGISTRY/REPO and DIGEST;
// message: a message signature over the manifest's bytes (fetched from the registry).
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const { DSSEBundleBuilder, MessageSignatureBundleBuilder } = require('@sigstore/sign');
const { bundleToJSON } = require('@sigstore/bundle');
const { attachArtifactToImage } = require('@sigstore/oci');

async function main() {
  const [imageName, digest, keyPath, mode = 'dsse'] = process.argv.slice(2);
  const privateKey = crypto.createPrivateKey(fs.readFileSync(keyPath));
  const publicKey = crypto.createPublicKey(privateKey).export({ format: 'pem', type: 'spki' }).toString();
  const hint = crypto.createHash('sha256')
    .update(crypto.createPublicKey(privateKey).export({ format: 'der', type: 'spki' })).digest('base64');
  const signer = {
    sign: async (data) => ({
      signature: crypto.sign('sha256', data, privateKey),
      key: { $case: 'publicKey', publicKey, hint },
    }),
  };
  let bundle;
  if (mode === 'message') {
    const [host, ...path] = imageName.split('/');
    const res = await fetch(`http://${host}/v2/${path.join('/')}/manifests/${digest}`, {
      headers: { Accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json' },
    });
    const body = Buffer.from(await res.arrayBuffer());
    bundle = await new MessageSignatureBundleBuilder({ signer, witnesses: [] }).create({ data: body });
    // sigstore-js labels message-signature bundles v0.2 (its certificate-chain form); with a bare
    // public key v0.2 and v0.3 are the same document, and OCI media types take no parameters
    bundle.mediaType = 'application/vnd.dev.sigstore.bundle.v0.3+json';
  } else {
    const [alg, hex] = digest.split(':');
    const statement = {
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: imageName, digest: { [alg]: hex } }],
      predicateType: 'https://sigstore.dev/cosign/sign/v1',
      predicate: {},
    };
    bundle = await new DSSEBundleBuilder({ signer, witnesses: [] })
      .create({ data: Buffer.from(JSON.stringify(statement)), type: 'application/vnd.in-toto+json' });
  }
  const json = bundleToJSON(bundle);
  const desc = await attachArtifactToImage({
    imageName, imageDigest: digest, artifact: Buffer.from(JSON.stringify(json)),
    mediaType: json.mediaType, annotations: { 'dev.sigstore.bundle.content': mode },
  });
  process.stdout.write(JSON.stringify({ referrer: desc.digest, mediaType: json.mediaType }) + '\n');
}

main().catch((e) => { console.error(e && e.cause ? `${e.message}: ${e.cause}` : e); process.exit(1); });
