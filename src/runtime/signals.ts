/**
 * Process signals: SIGHUP reloads the config; SIGTERM and SIGINT drain gracefully and
 * exit 0; a second SIGTERM/SIGINT while draining exits at once. SIGUSR1 reopens the log
 * file (logrotate); SIGUSR2 replaces the workers with ones running the code now on disk
 * (with --workers; a single process logs that it cannot).
 *
 * The returned `stop` starts the same graceful stop as SIGTERM, for POST /api/stop.
 */
import type { Logger } from 'pino';

export interface SignalTarget {
  reload(): Promise<unknown>;
  shutdown(): Promise<void>;
  reopenLogs?(): void;
  /** Absent when this process has no workers to replace. */
  upgrade?(): Promise<unknown>;
}

export interface SignalControl {
  /** A graceful stop, as on SIGTERM; `cause` is logged (e.g. "POST /api/stop"). */
  stop(cause: string): void;
}

export function handleSignals(target: SignalTarget, logger: Logger, exit: (code: number) => void = (code) => process.exit(code)): SignalControl {
  let stopping = false;
  process.on('SIGHUP', () => {
    logger.info({ event: 'signal', signal: 'SIGHUP' }, 'reloading configuration');
    void target.reload();
  });
  process.on('SIGUSR1', () => {
    logger.info({ event: 'signal', signal: 'SIGUSR1' }, 'reopening the log file');
    target.reopenLogs?.();
  });
  process.on('SIGUSR2', () => {
    if (!target.upgrade) {
      logger.warn(
        { event: 'signal', signal: 'SIGUSR2' },
        'upgrade needs --workers N: a single process cannot replace itself without closing its listeners; restart it to run new code',
      );
      return;
    }
    logger.info({ event: 'signal', signal: 'SIGUSR2' }, 'upgrading: replacing the workers one by one');
    void target.upgrade();
  });
  const stop = (cause: string): void => {
    if (stopping) {
      logger.warn({ event: 'signal', signal: cause }, 'second signal: exiting now');
      return exit(1);
    }
    stopping = true;
    logger.info({ event: 'signal', signal: cause }, 'shutting down gracefully');
    target.shutdown().then(
      () => exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return {
    stop: (cause) => {
      // A stop asked for twice over the API is still one graceful stop, not an abrupt exit.
      if (!stopping) stop(cause);
    },
  };
}
