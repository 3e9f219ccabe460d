/**
 * Loads a user filter plugin: an ES module, by path relative to the config file's folder,
 * whose default export (or named export `createFilter`) is a FilterFactory, with an
 * optional named export `validateOptions` (an OptionsValidator). The file's modification
 * time is part of the import URL, so a reload picks up an edited plugin while an unchanged
 * one comes from the module cache.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { FilterFactory, OptionsValidator } from './filter.js';
import { TcpProxyError } from '../errors/errors.js';

export interface Plugin {
  readonly createFilter: FilterFactory;
  readonly validateOptions: OptionsValidator | undefined;
}

export async function loadPlugin(specifier: string, baseDir: string): Promise<Plugin> {
  const url = specifier.startsWith('file:') ? new URL(specifier) : pathToFileURL(resolve(baseDir, specifier));
  let module: Record<string, unknown>;
  try {
    const { mtimeMs } = await stat(fileURLToPath(url));
    url.searchParams.set('mtime', String(mtimeMs));
    module = (await import(url.href)) as Record<string, unknown>;
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new TcpProxyError('plugin_load', `cannot load ${specifier} (${fileURLToPath(url)}): ${reason}`);
  }
  const factory = typeof module.default === 'function' ? module.default : module.createFilter;
  if (typeof factory !== 'function') {
    throw new TcpProxyError('plugin_load', `${specifier} exports no filter factory (expected a default export or a named export "createFilter")`);
  }
  const validator = module.validateOptions;
  if (validator !== undefined && typeof validator !== 'function')
    throw new TcpProxyError('plugin_load', `${specifier}: its export "validateOptions" is not a function`);
  return { createFilter: factory as FilterFactory, validateOptions: validator as OptionsValidator | undefined };
}
