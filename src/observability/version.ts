/** The package version, read once from package.json (the single source of truth). */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TcpProxyError } from '../errors/errors.js';

/** The nearest package.json above this module (from src/ under tsx, from dist/src/ when built). */
function findPackageJson(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new TcpProxyError('internal', 'package.json not found');
    dir = parent;
  }
  return join(dir, 'package.json');
}

export const VERSION: string = (JSON.parse(readFileSync(findPackageJson(), 'utf8')) as { version: string }).version;
