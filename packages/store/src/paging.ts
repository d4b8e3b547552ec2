import type { RecordPage, RecordQuery, SignedRecord } from '@joinguard/protocol';

/** Every record a query matches, page after page (a store's query, or a verifier's GET /v1/records). */
export async function* allRecords(query: (q: RecordQuery) => Promise<RecordPage>, q: RecordQuery): AsyncIterable<SignedRecord> {
  let cursor: string | undefined;
  do {
    const page = await query({ ...q, ...(cursor ? { cursor } : {}) });
    yield* page.records;
    cursor = page.nextCursor;
  } while (cursor);
}
