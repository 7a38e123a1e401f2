// Days and 15-minute slots in the wallboard's time zone. Every time zone in use is offset from
// UTC by a multiple of 15 minutes, so a 15-minute slot of UTC is a 15-minute slot of local time:
// the (day, slot) of an instant is computed once per slot with Intl and reused, and midnight is
// where the day changes, whatever the DST rules.

export const SLOT_MS = 15 * 60_000;
export const SLOTS_PER_DAY = 96;

export interface DaySlot {
  /** YYYY-MM-DD in the time zone. */
  day: string;
  /** 0–95: the local quarter hour. A DST day has 92 or 100 quarter hours; repeated ones share. */
  index: number;
}

/** Throws a RangeError for a time zone Intl does not know (the config validator checks first). */
export function checkTimeZone(timeZone: string): void {
  new Intl.DateTimeFormat('en-CA', { timeZone });
}

/** The machine's own time zone (TZ, /etc/localtime), as Node sees it. */
export function localTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

export class DayClock {
  private readonly format: Intl.DateTimeFormat;
  private cachedSlot = Number.NaN;
  private cached: DaySlot = { day: '', index: 0 };

  constructor(readonly timeZone: string) {
    this.format = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  }

  at(ms: number): DaySlot {
    const slot = Math.floor(ms / SLOT_MS);
    if (slot === this.cachedSlot) return this.cached;
    const parts: Record<string, string> = {};
    for (const p of this.format.formatToParts(new Date(slot * SLOT_MS))) parts[p.type] = p.value;
    this.cachedSlot = slot;
    this.cached = { day: `${parts.year}-${parts.month}-${parts.day}`, index: Number(parts.hour) * 4 + Math.floor(Number(parts.minute) / 15) };
    return this.cached;
  }

  /** The slot's label, "08:15". */
  static label(index: number): string {
    const h = Math.floor(index / 4);
    const m = (index % 4) * 15;
    return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`;
  }
}

/** The day `days` before `day` (YYYY-MM-DD), for retention. */
export function daysBefore(day: string, days: number): string {
  const t = Date.parse(`${day}T00:00:00Z`) - days * 86_400_000;
  return new Date(t).toISOString().slice(0, 10);
}
