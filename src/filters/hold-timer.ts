/**
 * The timer of a filter that holds back a possible partial match (replace, block): when no
 * further data arrives within `hold` ms, the held bytes are released so that a message
 * that merely ends like the start of the pattern does not stall its protocol. One Timeout
 * per filter, re-armed with refresh() rather than re-created per chunk; unref()ed.
 */
export class HoldTimer {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly holdMs: number,
    private readonly onExpire: () => void,
  ) {}

  /** Starts (or restarts) the countdown. */
  arm(): void {
    if (this.timer) this.timer.refresh();
    else this.timer = setTimeout(this.expire, this.holdMs).unref();
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private readonly expire = (): void => {
    this.timer = undefined;
    this.onExpire();
  };
}
