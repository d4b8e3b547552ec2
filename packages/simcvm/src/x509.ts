// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs the Reflect metadata
// polyfill loaded first; this package uses @peculiar/x509 only through this module.
import 'reflect-metadata';

export * from '@peculiar/x509';
