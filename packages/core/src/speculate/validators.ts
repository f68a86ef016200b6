import type { Session } from '../control';
import { MAX_PROMISES, type HeaderPairs, type PushInfo, type ResponseHead } from '../protocol';

/** A head of validators alike (with their promises), in bytes at most (roughly). */
const ALIKE_BYTES = 160 * 1024;

/**
 * Validators of one turn that differ only in URL and ETag leave as one head (`alike`): a reload
 * revalidates every module, and each then costs its URL and ETag instead of a whole head.
 */
export interface ValidatorBatch {
  /** A validator push (no body): joined to a head alike, sent at the end of this turn. */
  add(s: Session, info: PushInfo, headers: HeaderPairs, etag: string, promise: string[] | undefined): void;
  /** Forgets what is waiting (every push went stale). */
  clear(): void;
}

export function createValidatorBatch(emit: (s: Session, head: ResponseHead, bytes: undefined) => void): ValidatorBatch {
  const alike = new Map<string, { s: Session; head: ResponseHead & { push: PushInfo }; promise: string[]; size: number }>();

  function flush(key: string): void {
    const group = alike.get(key)!;
    alike.delete(key);
    const { head } = group;
    if (head.push.alike!.length === 0) delete head.push.alike;
    if (group.promise.length > 0) head.promise = group.promise;
    emit(group.s, head, undefined);
  }

  function flushAll(): void {
    for (const key of [...alike.keys()]) flush(key);
  }

  return {
    add(s, info, headers, etag, promise) {
      const shared = headers.filter(([n]) => n.toLowerCase() !== 'etag');
      const key = JSON.stringify([info.identity, info.variant, info.vary, info.gen, shared]);
      const size = info.url.length + etag.length + 8 + (promise?.reduce((n, u) => n + u.length + 3, 0) ?? 0);
      const group = alike.get(key);
      // One head stays far below MAX_HEAD_BYTES (256 KiB), its lists within MAX_PROMISES.
      const fits = group && group.s === s && group.size + size <= ALIKE_BYTES && group.head.push.alike!.length < MAX_PROMISES && group.promise.length + (promise?.length ?? 0) <= MAX_PROMISES;
      if (group && fits) {
        group.head.push.alike!.push([info.url, etag]);
        if (promise) group.promise.push(...promise);
        group.size += size;
        return;
      }
      if (group) flush(key);
      if (alike.size === 0) setImmediate(flushAll);
      alike.set(key, { s, head: { status: 200, headers: [...shared, ['etag', etag]], bodyLength: 0, push: { ...info, alike: [] } }, promise: promise ? [...promise] : [], size });
    },

    clear: () => alike.clear(),
  };
}
