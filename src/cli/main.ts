/**
 * The CLI entry point: parse the command line, load and validate the config, start the
 * runtime, wire signals. Exit status: 0 normal, 1 runtime failure, 2 usage/config error.
 */
import { buildSnapshot, ConfigError, loadConfigFile, type ConfigSnapshot } from '../config/load.js';
import { createLogger, type LogFormat } from '../observability/logger.js';
import { ListenError } from '../proxy/listener.js';
import { checkListenerResources } from '../runtime/build-context.js';
import { ProxyRuntime } from '../runtime/runtime.js';
import { handleSignals } from '../runtime/signals.js';
import { VERSION } from '../runtime/version.js';
import { runWorkers, workerCount } from '../runtime/workers.js';
import { ToxiproxyServer } from '../toxiproxy/server.js';
import { flagForKeyPath, parseCommandLine, UsageError, type Command, type GlobalOverrides } from './args.js';
import { runDemo } from './demo.js';
import { HELP } from './help.js';

export async function main(argv: readonly string[]): Promise<void> {
  try {
    const command = parseCommandLine(argv);
    switch (command.kind) {
      case 'help':
        process.stdout.write(HELP);
        return;
      case 'version':
        process.stdout.write(`${VERSION}\n`);
        return;
      case 'demo':
        await runDemo(command.options);
        return;
      case 'toxiproxy-server':
        await runToxiproxyServer(command);
        return;
      case 'run': {
        const load = async (): Promise<ConfigSnapshot> =>
          command.configFile !== undefined
            ? loadConfigFile(command.configFile, (raw) => applyOverrides(raw, command.overrides))
            : buildSnapshot(applyOverrides(command.raw, command.overrides));
        const snapshot = await load().catch((error: unknown) => {
          if (error instanceof ConfigError && command.configFile === undefined) throw renameKeysToFlags(error);
          throw error;
        });
        if (command.check) {
          for (const listener of snapshot.listeners) await checkListenerResources(listener, snapshot.baseDir);
          process.stdout.write('ok\n');
          return;
        }
        await run(snapshot, command.configFile !== undefined ? load : undefined);
        return;
      }
    }
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError) {
      for (const line of error.message.split('\n')) process.stderr.write(`tcpproxy: ${line}\n`);
      if (error instanceof UsageError) process.stderr.write('Try "tcpproxy --help".\n');
      process.exit(2);
    }
    if (error instanceof ListenError || (error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      process.stderr.write(`tcpproxy: ${(error as Error).message}\n`);
      process.exit(1);
    }
    process.stderr.write(`tcpproxy: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  }
}

async function runToxiproxyServer(command: Extract<Command, { kind: 'toxiproxy-server' }>): Promise<void> {
  const levels = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const;
  const level = levels.find((l) => l === (command.logLevel ?? 'info'));
  if (level === undefined) throw new UsageError(`--log-level: unknown level "${command.logLevel}"`);
  const logger = createLogger({ level });
  const server = new ToxiproxyServer({ host: command.host, port: command.port, configFile: command.configFile, logger });
  handleSignals(server, logger);
  await server.start();
}

async function run(snapshot: ConfigSnapshot, reloadSource: (() => Promise<ConfigSnapshot>) | undefined): Promise<void> {
  const logger = createLogger({ level: snapshot.log.level, format: snapshot.log.format as LogFormat | undefined });
  if (workerCount(snapshot) > 1) {
    // Proxies created through it would exist in one process only.
    if (snapshot.admin?.toxiproxy_api) throw new ConfigError(['admin.toxiproxy_api: needs workers: 1']);
    return runWorkers(snapshot, logger, reloadSource);
  }
  const runtime = new ProxyRuntime(snapshot, logger, reloadSource);
  handleSignals(runtime, logger);
  await runtime.start();
}

function applyOverrides(raw: unknown, overrides: GlobalOverrides): unknown {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  const config = { ...(raw as Record<string, unknown>) };
  const section = (key: string): Record<string, unknown> => {
    const value = config[key];
    return value !== null && typeof value === 'object' ? { ...(value as Record<string, unknown>) } : {};
  };
  if (overrides.logLevel !== undefined || overrides.logFormat !== undefined) {
    config.log = {
      ...section('log'),
      ...(overrides.logLevel !== undefined && { level: overrides.logLevel }),
      ...(overrides.logFormat !== undefined && { format: overrides.logFormat }),
    };
  }
  if (overrides.admin !== undefined) config.admin = { ...section('admin'), listen: overrides.admin };
  if (overrides.workers !== undefined) config.workers = /^\d+$/.test(overrides.workers) ? Number(overrides.workers) : overrides.workers;
  return config;
}

const GLOBAL_FLAGS: Readonly<Record<string, string>> = {
  'log.level': '--log-level',
  'log.format': '--log-format',
  'admin.listen': '--admin',
  'admin.token': '--admin-token',
  workers: '--workers',
};

/** A config built from flags reports its problems under the flags' names. */
function renameKeysToFlags(error: ConfigError): ConfigError {
  return new ConfigError(
    error.problems.map((line) => {
      const colon = line.indexOf(': ');
      const path = line.slice(0, colon);
      return `${GLOBAL_FLAGS[path] ?? flagForKeyPath(path)}: ${line.slice(colon + 2)}`;
    }),
  );
}
