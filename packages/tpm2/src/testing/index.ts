export { startSwtpm, manufactureSwtpm, missingSwtpmTools } from './swtpm.js';
export type { Swtpm, SwtpmOptions } from './swtpm.js';
