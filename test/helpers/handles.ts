/** Which timers and TCP sockets created while tracking are still alive: for "nothing left behind" checks. */
import { createHook } from 'node:async_hooks';

export interface HandleTracker {
  /** The kinds ('Timeout', 'TCPWRAP', 'TCPCONNECTWRAP') of those created since start() and not destroyed yet. */
  live(): string[];
  start(): void;
  stop(): void;
}

export function trackHandles(): HandleTracker {
  const live = new Map<number, string>();
  const hook = createHook({
    init(id, type) {
      if (type === 'Timeout' || type === 'TCPWRAP' || type === 'TCPCONNECTWRAP') live.set(id, type);
    },
    destroy(id) {
      live.delete(id);
    },
  });
  return {
    live: () => [...live.values()],
    start: () => void hook.enable(),
    stop: () => void hook.disable(),
  };
}
