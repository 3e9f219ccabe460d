/**
 * The CLI entry point: parse the command line, load and validate the config, start the
 * runtime, wire signals. Exit status: 0 normal, 1 runtime failure, 2 usage/config error.
 */
import { buildSnapshot, ConfigError, loadConfigFile, type ConfigSnapshot } from '../config/load.js';
import cluster from 'node:cluster';
import { resolve } from 'node:path';
import { createLogger, openLogs } from '../observability/logger.js';
import { checkListenerResources } from '../runtime/build-context.js';
import { ProxyRuntime } from '../runtime/runtime.js';
import { burstFromEnvironment } from '../proxy/burst-collector.js';
import { checkPidFileFree, holdPidFile } from '../runtime/pid-file.js';
import { handleSignals } from '../runtime/signals.js';
import { VERSION } from '../observability/version.js';
import { runWorkers, workerCount } from '../runtime/workers.js';
import { flagForKeyPath, parseCommandLine, UsageError, type Command, type GlobalOverrides } from './args.js';
import { TcpProxyError } from '../errors/errors.js';

export async function main(argv: readonly string[]): Promise<void> {
  try {
    const command = parseCommandLine(argv);
    // Each command loads what it runs: a proxy does not hold the demo, the control client or the help text.
    switch (command.kind) {
      case 'help':
        process.stdout.write((await import('./help.js')).HELP);
        return;
      case 'version':
        process.stdout.write(`${VERSION}\n`);
        return;
      case 'demo':
        checkEnvironment();
        await (await import('./demo.js')).runDemo(command.options);
        return;
      case 'control':
        process.exitCode = await (await import('./control.js')).runControl(command);
        return;
      case 'toxiproxy-server':
        checkEnvironment();
        await runToxiproxyServer(command);
        return;
      case 'run': {
        checkEnvironment();
        const load = async (): Promise<ConfigSnapshot> =>
          command.configFile !== undefined
            ? loadConfigFile(command.configFile, (raw) => applyOverrides(raw, command.overrides))
            : buildSnapshot(applyOverrides(command.raw, command.overrides));
        const snapshot = await load().catch((error: unknown) => {
          if (error instanceof ConfigError && command.configFile === undefined) throw renameKeysToFlags(error, command.fourArguments === true);
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
    // tcpproxy's own errors say in one line what failed; anything else is a bug: its stack helps.
    if ((error instanceof TcpProxyError && error.code !== 'internal') || (error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      process.stderr.write(`tcpproxy: ${(error as Error).message}\n`);
      process.exit(1);
    }
    process.stderr.write(`tcpproxy: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  }
}

/** The environment variables a proxy reads at start (README "Memory after a burst"), refused like a bad config key. */
function checkEnvironment(): void {
  if (burstFromEnvironment() === undefined) {
    throw new ConfigError([`TCPPROXY_COLLECT_AFTER_BURST: "${process.env.TCPPROXY_COLLECT_AFTER_BURST}" is not a whole number (0 turns it off)`]);
  }
}

async function runToxiproxyServer(command: Extract<Command, { kind: 'toxiproxy-server' }>): Promise<void> {
  const levels = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const;
  const level = levels.find((l) => l === (command.logLevel ?? 'info'));
  if (level === undefined) throw new UsageError(`--log-level: unknown level "${command.logLevel}"`);
  const logger = createLogger({ level });
  const { ToxiproxyServer } = await import('./toxiproxy-server.js');
  const server = new ToxiproxyServer({ host: command.host, port: command.port, configFile: command.configFile, logger });
  handleSignals(server, logger);
  await server.start();
}

async function run(snapshot: ConfigSnapshot, reloadSource: (() => Promise<ConfigSnapshot>) | undefined): Promise<void> {
  const pidFile = snapshot.pid_file === undefined ? undefined : resolve(snapshot.baseDir, snapshot.pid_file);
  // Refuse before binding anything when another instance owns the pid file.
  if (pidFile !== undefined && cluster.isPrimary) checkPidFileFree(pidFile);
  const logs = openLogs({
    level: snapshot.log.level,
    format: snapshot.log.format,
    file: snapshot.log.file === undefined ? undefined : resolve(snapshot.baseDir, snapshot.log.file),
    syslog: snapshot.log.syslog,
  });
  if (workerCount(snapshot) > 1) {
    // Proxies created through it would exist in one process only.
    if (snapshot.admin?.toxiproxy_api) throw new ConfigError(['admin.toxiproxy_api: needs workers: 1']);
    await runWorkers(snapshot, logs, reloadSource);
  } else {
    const runtime = new ProxyRuntime(snapshot, logs.logger, reloadSource);
    const signals = handleSignals({ reload: () => runtime.reload(), shutdown: () => runtime.shutdown(), reopenLogs: () => logs.reopen() }, logs.logger);
    runtime.stopHandler = () => signals.stop('POST /api/stop');
    await runtime.start();
  }
  // Every listener is bound: now the instance can be found (the primary's pid with --workers).
  if (pidFile !== undefined && cluster.isPrimary) holdPidFile(pidFile);
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
  if (overrides.admin !== undefined || overrides.adminToken !== undefined) {
    // A security flag is never dropped: --admin-token sets admin.token over the file's (#12).
    config.admin = {
      ...section('admin'),
      ...(overrides.admin !== undefined && { listen: overrides.admin }),
      ...(overrides.adminToken !== undefined && { token: overrides.adminToken }),
    };
  }
  if (overrides.workers !== undefined) config.workers = /^\d+$/.test(overrides.workers) ? Number(overrides.workers) : overrides.workers;
  // From the command line, a relative path is relative to where the command runs.
  if (overrides.pidFile !== undefined) config.pid_file = resolve(overrides.pidFile);
  return config;
}

const GLOBAL_FLAGS: Readonly<Record<string, string>> = {
  'log.level': '--log-level',
  'log.format': '--log-format',
  'admin.listen': '--admin',
  'admin.token': '--admin-token',
  workers: '--workers',
  pid_file: '--pid-file',
};

/** A config built from flags reports its problems under the flags' names. */
function renameKeysToFlags(error: ConfigError, fourArguments: boolean): ConfigError {
  return new ConfigError(
    error.problems.map((line) => {
      const colon = line.indexOf(': ');
      const path = line.slice(0, colon);
      return `${GLOBAL_FLAGS[path] ?? flagForKeyPath(path, fourArguments)}: ${line.slice(colon + 2)}`;
    }),
  );
}
