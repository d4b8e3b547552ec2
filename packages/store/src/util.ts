import { digest } from '@joinguard/core';

/** Runs `fn` after every earlier task queued under `key`, so one process never races itself on a log head. */
export function serialize<T>(queues: Map<string, Promise<unknown>>, key: string, fn: () => Promise<T>): Promise<T> {
  const prev = queues.get(key) ?? Promise.resolve();
  const next = prev.then(fn, fn);
  const tail = next.catch(() => undefined);
  queues.set(key, tail);
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return next;
}

/** Nonces are stored by digest: fixed length, a safe alphabet for KV keys, and no attacker-chosen text. */
export function nonceKey(nonce: string): string {
  return digest('sha256', nonce, 'hex');
}
