// A string-keyed map for entries that come and go all the time (a delivery in flight, a call in
// progress): a dictionary object, not a Map.
//
// Why: V8's Map stores its entries in a hash table that it replaces whenever deletions have used
// up its room (every few operations under set/delete churn), and it links each table it replaces
// to its successor, entries and all (so that iterators can follow). Once one table of that chain
// has been promoted to the old generation, every later table, and every entry they hold, survives
// the next scavenge through the dead one before it and is promoted in turn, until a full
// mark-compact. Measured (npm run bench:map-churn; BENCHMARKS.md, issue 18, sixth pass): 8 live
// entries under set/delete churn promote 4,900 KB per scavenge in a Map, 29 KB in this; the
// delivery thread draining a backlog promoted 1,589 KB per scavenge with a Map of its deliveries in
// flight and a Map of outcomes cleared every turn, 865 KB without them, and its scavenges went from
// 5.1 to 3.2 ms. A dictionary object drops the table it outgrows without linking it to anything.
//
// Same interface as the parts of Map the daemon uses. Iteration order is not insertion order for
// keys that look like array indices ("42"): nothing here relies on order.
export class ChurnMap<V> {
  private dict: Record<string, V> = Object.create(null) as Record<string, V>;
  private count = 0;

  /** Like `new Map(entries)`. */
  constructor(entries?: Iterable<readonly [string, V]>) {
    if (entries) for (const [key, value] of entries) this.set(key, value);
  }

  get size(): number {
    return this.count;
  }

  has(key: string): boolean {
    return key in this.dict;
  }

  get(key: string): V | undefined {
    return this.dict[key];
  }

  set(key: string, value: V): this {
    if (!(key in this.dict)) this.count += 1;
    this.dict[key] = value;
    return this;
  }

  delete(key: string): boolean {
    if (!(key in this.dict)) return false;
    delete this.dict[key];
    this.count -= 1;
    return true;
  }

  clear(): void {
    this.dict = Object.create(null) as Record<string, V>;
    this.count = 0;
  }

  *keys(): IterableIterator<string> {
    for (const key in this.dict) yield key;
  }

  *values(): IterableIterator<V> {
    for (const key in this.dict) yield this.dict[key]!;
  }

  *entries(): IterableIterator<[string, V]> {
    for (const key in this.dict) yield [key, this.dict[key]!];
  }

  [Symbol.iterator](): IterableIterator<[string, V]> {
    return this.entries();
  }
}
