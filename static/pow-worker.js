// The waiting room's proof of work, off the page's main thread: finds a
// nonce such that SHA-256 of `challenge + ":" + nonce` starts with `bits`
// zero bits (about 2^bits hashes; the server checks one). Hashes run in
// batches so the browser's native SHA-256 is kept busy between awaits.
// In: {challenge, bits}. Out: {nonce, tries, ms}.
const BATCH = 512;

function zeroBits(digest) {
  let bits = 0;
  for (const byte of digest) {
    if (byte === 0) { bits += 8; continue; }
    return bits + Math.clz32(byte) - 24;
  }
  return bits;
}

self.onmessage = async ({ data: { challenge, bits } }) => {
  const encoder = new TextEncoder();
  const started = performance.now();
  for (let base = 0; ; base += BATCH) {
    const batch = [];
    for (let n = base; n < base + BATCH; n++) {
      batch.push(crypto.subtle.digest("SHA-256", encoder.encode(`${challenge}:${n}`)));
    }
    const digests = await Promise.all(batch);
    for (let i = 0; i < BATCH; i++) {
      if (zeroBits(new Uint8Array(digests[i])) >= bits) {
        self.postMessage({ nonce: String(base + i), tries: base + i + 1, ms: performance.now() - started });
        return;
      }
    }
  }
};
