/**
 * Loads a user filter plugin: an ES module, by path relative to the config file's folder,
 * whose default export (or named export `createFilter`) is a FilterFactory. The file's
 * modification time is part of the import URL, so a reload picks up an edited plugin while
 * an unchanged one comes from the module cache.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { FilterFactory } from './filter.js';

export async function loadPlugin(specifier: string, baseDir: string): Promise<FilterFactory> {
  const url = specifier.startsWith('file:') ? new URL(specifier) : pathToFileURL(resolve(baseDir, specifier));
  let module: Record<string, unknown>;
  try {
    const { mtimeMs } = await stat(fileURLToPath(url));
    url.searchParams.set('mtime', String(mtimeMs));
    module = (await import(url.href)) as Record<string, unknown>;
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new Error(`cannot load ${specifier} (${fileURLToPath(url)}): ${reason}`);
  }
  const factory = typeof module.default === 'function' ? module.default : module.createFilter;
  if (typeof factory !== 'function') {
    throw new Error(`${specifier} exports no filter factory (expected a default export or a named export "createFilter")`);
  }
  return factory as FilterFactory;
}
