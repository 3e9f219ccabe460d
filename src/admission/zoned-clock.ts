/**
 * Wall-clock time in an IANA time zone, from the platform's Intl data (no tz library).
 *
 * "Wall ms" is a local date and time encoded as if it were a UTC instant
 * (Date.UTC(year, month, day, hour, minute, second)), so calendar arithmetic on it is
 * plain arithmetic. The UTC offset at an instant is its wall ms minus the instant.
 */
const FORMAT_OPTIONS: Intl.DateTimeFormatOptions = {
  hourCycle: 'h23',
  year: 'numeric',
  month: 'numeric',
  day: 'numeric',
  hour: 'numeric',
  minute: 'numeric',
  second: 'numeric',
};

export class ZonedClock {
  readonly #format: Intl.DateTimeFormat;
  /**
   * Offsets change only on whole seconds, so the wall time of a second answers every
   * instant inside it. Intl formatting costs microseconds; under a burst of connections
   * this cache turns it into one call per second.
   */
  #cachedSecond = Number.NaN;
  #cachedWallSecondMs = 0;

  /** Throws RangeError for a time zone the platform does not know. */
  constructor(readonly timeZone: string) {
    this.#format = new Intl.DateTimeFormat('en-US', { ...FORMAT_OPTIONS, timeZone });
  }

  wallMs(epochMs: number): number {
    const second = Math.floor(epochMs / 1000);
    if (second !== this.#cachedSecond) {
      this.#cachedWallSecondMs = this.#wallOfSecond(second * 1000);
      this.#cachedSecond = second;
    }
    return this.#cachedWallSecondMs + (epochMs - second * 1000);
  }

  offsetMs(epochMs: number): number {
    return this.wallMs(epochMs) - epochMs;
  }

  /**
   * The first instant after `fromMs` whose UTC offset differs from the offset at
   * `fromMs`, given that the offset at `toMs` differs (so one lies in between).
   * Binary search over whole seconds: about 20 Intl calls for a week's span.
   */
  offsetChangeBetween(fromMs: number, toMs: number): number {
    const offset = this.offsetMs(fromMs);
    let unchanged = Math.floor(fromMs / 1000);
    let changed = Math.floor(toMs / 1000);
    while (changed - unchanged > 1) {
      const mid = Math.floor((unchanged + changed) / 2);
      if (this.offsetMs(mid * 1000) === offset) unchanged = mid;
      else changed = mid;
    }
    return changed * 1000;
  }

  #wallOfSecond(epochMs: number): number {
    let year = 0;
    let month = 0;
    let day = 0;
    let hour = 0;
    let minute = 0;
    let second = 0;
    for (const part of this.#format.formatToParts(epochMs)) {
      switch (part.type) {
        case 'year':
          year = Number(part.value);
          break;
        case 'month':
          month = Number(part.value);
          break;
        case 'day':
          day = Number(part.value);
          break;
        case 'hour':
          hour = Number(part.value);
          break;
        case 'minute':
          minute = Number(part.value);
          break;
        case 'second':
          second = Number(part.value);
          break;
        default:
          break;
      }
    }
    return Date.UTC(year, month - 1, day, hour, minute, second);
  }
}
