/**
 * A Map for caches and memos: at most `maxEntries` entries and, when given, `maxCost` in total (each entry
 * costing what `set` is told), the oldest entry forgotten first to make room. An entry costing more than
 * `maxCost` on its own is not kept.
 */
export class BoundedMap<K, V> {
  private readonly entries = new Map<K, { value: V; cost: number }>();
  private total = 0;

  constructor(
    readonly maxEntries: number,
    readonly maxCost = Infinity,
  ) {}

  get(key: K): V | undefined {
    return this.entries.get(key)?.value;
  }

  has(key: K): boolean {
    return this.entries.has(key);
  }

  set(key: K, value: V, cost = 0): void {
    this.delete(key);
    if (cost > this.maxCost) return;
    for (const [oldest, e] of this.entries) {
      if (this.entries.size < this.maxEntries && this.total + cost <= this.maxCost) break;
      this.entries.delete(oldest);
      this.total -= e.cost;
    }
    this.entries.set(key, { value, cost });
    this.total += cost;
  }

  delete(key: K): boolean {
    const e = this.entries.get(key);
    if (e === undefined) return false;
    this.entries.delete(key);
    this.total -= e.cost;
    return true;
  }

  clear(): void {
    this.entries.clear();
    this.total = 0;
  }

  /** The values kept, oldest first. */
  *values(): IterableIterator<V> {
    for (const e of this.entries.values()) yield e.value;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The sum of the costs of the entries kept. */
  get cost(): number {
    return this.total;
  }
}

/**
 * Freezes a value a memo shares between callers, all the way down, so that no caller can change what the next
 * one is given. Typed arrays cannot be frozen and are left as they are: memos keep copies nobody writes to.
 */
export function deepFreeze<T>(v: T): T {
  if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v)) return v;
  for (const x of Object.values(v)) deepFreeze(x);
  return Object.freeze(v);
}
