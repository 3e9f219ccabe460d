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
 * sees that direction's chunks in order. Its optional named export `validateOptions`
 * checks `options` when the config is loaded (and by `--check`), so that a typo is a
 * config error naming the key, not a failure on every connection. The types come from
 * the tcpproxy package.
 *
 * @typedef {import('tcpproxy').FilterFactory} FilterFactory
 * @typedef {import('tcpproxy').Filter} Filter
 * @typedef {import('tcpproxy').OptionsValidator} OptionsValidator
 * @typedef {import('tcpproxy').OptionsProblem} OptionsProblem
 */

/** @type {OptionsValidator} */
export function validateOptions(options) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    return [{ message: `expected an object such as { mode: upper }, got ${JSON.stringify(options)}` }];
  }
  /** @type {OptionsProblem[]} */
  const problems = [];
  for (const [key, value] of Object.entries(options)) {
    if (key !== 'mode') problems.push({ path: [key], message: 'unknown option (this plugin has only "mode")' });
    else if (value !== 'upper' && value !== 'lower') problems.push({ path: ['mode'], message: `expected "upper" or "lower", got ${JSON.stringify(value)}` });
  }
  return problems;
}

/** @type {FilterFactory} */
export default function createFilter(context, options) {
  // validateOptions has accepted these options before any connection.
  const mode = /** @type {{ mode?: 'upper' | 'lower' }} */ (options).mode ?? 'upper';
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
