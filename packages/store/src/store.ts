import type { JSONWebKeySet } from 'jose';
import type { NodeState, RecordDraft, RecordPage, RecordQuery, SignedRecord } from '@joinguard/protocol';

export interface ChainVerification {
  ok: boolean;
  log: string;
  /** records that verified, in order, before the first bad one (all of them when ok) */
  count: number;
  /**
   * the hash (SHA-256 of the payload, the next record's `prev`) of the last record that verified, the one at
   * seq `count`; absent when none did. What a caller reads back later can be checked to be that record.
   */
  headHash?: string;
  /** the seq at which the chain breaks: the record that is tampered, missing, duplicated or out of order */
  firstBadSeq?: number;
  /**
   * the id of the stored record at which the chain breaks, even one whose JWS does not decode: the store's own
   * (SQLite's `records.id`, JetStream's Nats-Msg-Id header), else the one its payload claims. Unverified, to
   * find the record with. Absent for a seq gap (that record is missing) and when nothing names it.
   */
  firstBadId?: string;
  /** stable code of the failure (STORE_CHAIN_BAD_SIGNATURE, STORE_CHAIN_SEQ_GAP, …) */
  code?: string;
  reason?: string;
}

export type NodeStateInput = Omit<NodeState, 'name'>;

/**
 * The records store. Both implementations (SQLite, NATS JetStream) pass the one contract suite
 * (test/contract.ts). Every method may throw JoinguardError: `input` kind for a bad argument,
 * `internal` (STORE_IO, STORE_CONFLICT) when the backend fails.
 */
export interface RecordStore {
  /**
   * Assigns id (unless given), seq, prev and time (unless given), signs, and returns only once the record is
   * durable. Appends to one log from several processes or replicas are serialised without forking the chain.
   */
  append(draft: RecordDraft): Promise<SignedRecord>;
  get(id: string): Promise<SignedRecord | undefined>;
  /** Oldest first; `nextCursor` is present when the page is full and more records may follow. */
  query(q?: RecordQuery): Promise<RecordPage>;
  /** Re-checks every signature, the seq order and the prev links of one log. */
  verifyChain(log: string, keys: JSONWebKeySet): Promise<ChainVerification>;
  /** Names of the logs that hold records. */
  logs(): Promise<string[]>;
  /** A blob a record names (RecordDraft.blobs), by lowercase hex SHA-256; undefined when unknown or misnamed. */
  getBlob(sha256: string): Promise<Uint8Array | undefined>;
  /** true the first time a nonce is seen before its expiry, false on replay (or when already expired). */
  consumeNonce(nonce: string, expiresAt: Date): Promise<boolean>;
  getNode(name: string): Promise<NodeState | undefined>;
  putNode(name: string, state: NodeStateInput): Promise<NodeState>;
  /**
   * Atomic read-modify-write of a node's state: `update` gets the current state (undefined for a new node) and
   * returns the new one; a concurrent write by another replica makes the store call `update` again on the newer
   * state, so no write is lost (an appraisal can never undo a revocation it raced with). `update` must be pure.
   */
  updateNode(name: string, update: (current: NodeState | undefined) => NodeStateInput): Promise<NodeState>;
  listNodes(): Promise<NodeState[]>;
  /**
   * A value every process sharing this store must agree on (the verifier keeps a fingerprint of the secrets
   * its replicas must share): stored under `name` when the store holds none yet, and whatever the store then
   * holds is returned, so the caller compares it with its own. Never overwritten.
   */
  pinSetting(name: string, value: string): Promise<string>;
  close(): Promise<void>;
}

export const DEFAULT_QUERY_LIMIT = 100;
export const MAX_QUERY_LIMIT = 1000;
