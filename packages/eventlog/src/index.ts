export { parseEventLog, parseCcel, eventDigestHex } from './parse.js';
export type { EventLog, TcgEvent, EventDigest, SpecIdEvent, SpecIdAlgorithm, ParseOptions } from './parse.js';
export { replayPcrs, replayRtmrs, comparePcrs, extendedPcrs, replayableBanks } from './replay.js';
export type { PcrBanks, Rtmrs, PcrMismatch, PcrComparison } from './replay.js';
export { decodeSignatureLists, decodeDevicePath, formatGuid, summarizeEvent } from './decode.js';
export type { DecodedEvent, SignatureList, SignatureEntry, GptPartition } from './decode.js';
export { EventType, HashAlg, LIMITS, Guid, eventTypeName, algName } from './constants.js';
