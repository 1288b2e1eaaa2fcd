/**
 * A budget of log lines per window, for what anyone on the network can cause: an unsigned
 * webhook delivery is logged, but a flood of them must not fill the operator's disk. Past the
 * budget, lines are counted instead, and the first line of the next window says how many.
 */
export class LogBudget {
  private windowStart = 0;
  private used = 0;
  private dropped = 0;

  constructor(
    private readonly perWindow: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether this line may be written, and how many were dropped before it (to say so). */
  take(): { log: boolean; dropped: number } {
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) {
      this.windowStart = t;
      this.used = 0;
    }
    if (this.used >= this.perWindow) {
      this.dropped++;
      return { log: false, dropped: 0 };
    }
    this.used++;
    const dropped = this.dropped;
    this.dropped = 0;
    return { log: true, dropped };
  }
}
