/**
 * Byte sizes in the filter and inspection config: a number of bytes, or a string with a
 * unit. `k`/`KiB`, `m`/`MiB`, `g`/`GiB` are powers of 1024 (as in nginx); `kB`, `MB`, `GB`
 * are powers of 1000. Decimals are allowed (`1.5MiB`); the result is rounded to a byte.
 */
import { TcpProxyError } from '../errors/errors.js';
const UNIT_BYTES: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  kb: 1000,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  mb: 1000 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  gb: 1000 ** 3,
};
const BYTE_SIZE = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i;

export function parseByteSize(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return Math.round(value);
  if (typeof value === 'string') {
    const match = BYTE_SIZE.exec(value.trim());
    const unit = match ? UNIT_BYTES[match[2]!.toLowerCase()] : undefined;
    if (match && unit !== undefined) return Math.round(Number(match[1]) * unit);
  }
  throw new TcpProxyError('config_invalid', `expected a size such as 65536, 64KiB or 1MB, got ${JSON.stringify(value)}`);
}
