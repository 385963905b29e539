/**
 * Open mode for a shared state that can go away (Redis): while the shared store fails, this
 * instance admits against its own MemorySharedState (the same limits, counted by this instance
 * alone, so N instances may together admit up to N times a limit during the outage), logs it,
 * and keeps every settlement it made. When the shared store answers again, the kept
 * settlements are replayed into it in order (a settle of a reservation the shared store never
 * held charges its cost to the period), so the shared counters catch up with what was spent.
 */
import { MemorySharedState, type JournalEntry, type ReserveInput, type ReserveResult, type RestoredReservation, type SettleInput, type SharedState } from './shared-state.js';

export class FailoverSharedState implements SharedState {
  private readonly local: MemorySharedState;
  /** Reservations this instance took locally (their settle stays local, then is replayed). */
  private readonly localIds = new Set<string>();
  private readonly replay: SettleInput[] = [];
  private degraded = false;
  private replaying: Promise<void> | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly shared: SharedState,
    private readonly log: (line: string) => void,
    options: { reservationTtlMs?: number } = {},
  ) {
    this.local = new MemorySharedState(options);
    this.timer = setInterval(() => void this.reconcile(), 500);
    this.timer.unref();
  }

  /** Settlements waiting for the shared store. */
  get pending(): number {
    return this.replay.length;
  }

  get usingLocal(): boolean {
    return this.degraded;
  }

  private failed(err: unknown): void {
    if (!this.degraded) this.log(`the shared state (Redis) failed (${err instanceof Error ? err.message : String(err)}); admitting on this instance's own limits until it returns.`);
    this.degraded = true;
  }

  now(): Promise<number> {
    return this.shared.now();
  }

  async reserve(input: ReserveInput): Promise<ReserveResult> {
    if (!this.degraded) {
      try {
        return await this.shared.reserve(input);
      } catch (err) {
        this.failed(err);
      }
    }
    this.localIds.add(input.id);
    return this.local.reserve(input);
  }

  async settle(input: SettleInput): Promise<void> {
    if (this.localIds.delete(input.id)) {
      await this.local.settle(input);
      this.replay.push(input);
      return;
    }
    try {
      if (this.degraded) throw new Error('shared state unavailable');
      await this.shared.settle(input);
    } catch (err) {
      this.failed(err);
      this.replay.push(input);
    }
  }

  /** Settle and record in one step on the shared store while it answers; otherwise throw, and the caller writes them apart. */
  async settleRecording(input: SettleInput, journal: JournalEntry): Promise<string | undefined> {
    if (this.degraded || this.localIds.has(input.id) || !this.shared.settleRecording) throw new Error('shared state unavailable');
    try {
      return await this.shared.settleRecording(input, journal);
    } catch (err) {
      this.failed(err);
      throw err;
    }
  }

  /** Try the shared store again; on success replay the kept settlements and go back to it. */
  private reconcile(): Promise<void> {
    if (!this.degraded && this.replay.length === 0) return Promise.resolve();
    this.replaying ??= (async () => {
      try {
        await this.shared.now();
        while (this.replay.length > 0) {
          await this.shared.settle(this.replay[0] as SettleInput);
          this.replay.shift();
        }
        // A cheap call that reaches Redis proves it is back (now() may be answered locally).
        await this.shared.budget('total', '-');
        if (this.degraded) this.log('the shared state (Redis) is back; local settlements reconciled.');
        this.degraded = false;
      } catch {
        // still down
      } finally {
        this.replaying = undefined;
      }
    })();
    return this.replaying;
  }

  async seedSpend(scope: string, periodId: string, spentMicros: number): Promise<void> {
    await this.local.seedSpend(scope, periodId, spentMicros);
    try {
      await this.shared.seedSpend(scope, periodId, spentMicros);
    } catch (err) {
      this.failed(err);
    }
  }

  async restore(reservation: RestoredReservation): Promise<void> {
    await this.shared.restore(reservation);
  }

  async budget(scope: string, periodId: string): Promise<{ spentMicros: number; reservedMicros: number } | undefined> {
    return this.degraded ? this.local.budget(scope, periodId) : this.shared.budget(scope, periodId);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.reconcile();
    await this.shared.close();
  }
}
