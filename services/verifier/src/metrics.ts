import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The verifier's Prometheus metrics, one registry per server instance (tests run several side by side). */
export class VerifierMetrics {
  readonly registry = new Registry();
  readonly appraisals: Counter<'tee' | 'verdict'>;
  readonly appraisalSeconds: Histogram<'tee'>;
  readonly keyReleases: Counter<'outcome'>;
  readonly challenges: Counter;
  readonly collateralAge: Gauge<'kind'>;
  readonly collateralFetchFailures: Counter<'kind'>;
  readonly nodeLastVerified: Gauge<'node'>;
  readonly rejections: Counter<'code'>;
  readonly cryptoBackend: Gauge<'operation' | 'backend' | 'library'>;
  readonly p384KeyTables: Gauge<'what'>;
  /** Where the key-table gauge reads its figures at a scrape (set by p384KeyTablesFrom). */
  private readonly p384Tables: { source?: () => { tables: number; builds: number; hits: number } | undefined } = {};
  private readonly ageSources: Array<() => Partial<Record<string, number>>> = [];

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'joinguard_' });
    const registers = [this.registry];
    this.appraisals = new Counter({ name: 'joinguard_appraisals_total', help: 'Appraisals by TEE kind and verdict', labelNames: ['tee', 'verdict'], registers });
    this.appraisalSeconds = new Histogram({
      name: 'joinguard_appraisal_duration_seconds',
      help: 'Time to appraise one evidence bundle, from request to signed result',
      labelNames: ['tee'],
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.keyReleases = new Counter({ name: 'joinguard_key_releases_total', help: 'Disk-key release decisions by outcome', labelNames: ['outcome'], registers });
    this.challenges = new Counter({ name: 'joinguard_challenges_issued_total', help: 'Challenges (nonces) issued', registers });
    const ageSources = this.ageSources;
    this.collateralAge = new Gauge({
      name: 'joinguard_collateral_cache_age_seconds',
      help: 'Age of the oldest cached collateral item by kind (tdx: since the offline bundle was issued; snp_*: since the KDS cache file was written)',
      labelNames: ['kind'],
      registers,
      // Read at every scrape from the sources run.ts registers (collateralAgeFrom), so the age keeps growing.
      collect() {
        this.reset();
        for (const source of ageSources) {
          let ages: Partial<Record<string, number>>;
          try {
            ages = source();
          } catch {
            continue;
          }
          for (const [kind, age] of Object.entries(ages)) if (age !== undefined && Number.isFinite(age)) this.set({ kind }, age);
        }
      },
    });
    this.collateralFetchFailures = new Counter({ name: 'joinguard_collateral_fetch_failures_total', help: 'Failed collateral fetches by kind', labelNames: ['kind'], registers });
    this.nodeLastVerified = new Gauge({ name: 'joinguard_node_last_verified_timestamp_seconds', help: 'Unix time of the last passing appraisal per node', labelNames: ['node'], registers });
    this.rejections = new Counter({ name: 'joinguard_rejections_total', help: 'Rejected requests by error code', labelNames: ['code'], registers });
    this.cryptoBackend = new Gauge({ name: 'joinguard_crypto_backend_info', help: 'The implementation of each costly crypto operation (value 1)', labelNames: ['operation', 'backend', 'library'], registers });
    const tables = this.p384Tables;
    this.p384KeyTables = new Gauge({
      name: 'joinguard_p384_key_tables',
      help: 'Per-key tables of the Nettle P-384 backend: tables kept now, tables built and verifications that used one since start (absent when tables are not in use)',
      labelNames: ['what'],
      registers,
      collect() {
        this.reset();
        const s = tables.source?.();
        if (!s) return;
        this.set({ what: 'kept' }, s.tables);
        this.set({ what: 'built' }, s.builds);
        this.set({ what: 'verifications' }, s.hits);
      },
    });
  }

  /** Where the P-384 key-table figures come from, asked at every scrape. */
  p384KeyTablesFrom(source: () => { tables: number; builds: number; hits: number } | undefined): void {
    this.p384Tables.source = source;
  }

  /** Adds a source of collateral ages (seconds by kind), asked at every scrape of the age gauge. */
  collateralAgeFrom(source: () => Partial<Record<string, number>>): void {
    this.ageSources.push(source);
  }
}
