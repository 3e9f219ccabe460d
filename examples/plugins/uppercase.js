// @ts-check
/**
 * An example tcpproxy filter plugin: changes the case of ASCII letters in the stream.
 *
 *   filters:
 *     - module: ./plugins/uppercase.js   # relative to the config file
 *       direction: to_client             # to_upstream | to_client | both (default)
 *       options: { mode: upper }         # upper (default) | lower
 *
 * A plugin is an ES module whose default export (or named export `createFilter`) is a
 * filter factory: called once per connection and direction, it returns the filter that
 * sees that direction's chunks in order. The types come from the tcpproxy package.
 *
 * @typedef {import('tcpproxy').FilterFactory} FilterFactory
 * @typedef {import('tcpproxy').Filter} Filter
 */

/** @type {FilterFactory} */
export default function createFilter(context, options) {
  const mode = /** @type {{ mode?: string }} */ (options).mode ?? 'upper';
  if (mode !== 'upper' && mode !== 'lower') throw new Error(`options.mode: expected upper or lower, got ${mode}`);
  // Letters of the other case: a-z (0x61..0x7a) for upper, A-Z (0x41..0x5a) for lower.
  const from = mode === 'upper' ? 0x61 : 0x41;
  const shift = mode === 'upper' ? -0x20 : 0x20;
  context.log.debug({ mode }, 'case filter ready');

  /** @type {Filter} */
  const filter = {
    data(chunk, push) {
      // A new buffer; changing `chunk` in place before pushing it would be allowed too.
      const out = Buffer.allocUnsafe(chunk.length);
      for (let i = 0; i < chunk.length; i++) {
        const byte = /** @type {number} */ (chunk[i]);
        out[i] = byte >= from && byte < from + 26 ? byte + shift : byte;
      }
      push(out);
    },
  };
  return filter;
}
