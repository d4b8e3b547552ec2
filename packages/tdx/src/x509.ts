// @peculiar/x509 v2 resolves its algorithm providers through tsyringe, which needs the Reflect metadata
// polyfill loaded first; every use of @peculiar/x509 in this package goes through this module.
import 'reflect-metadata';

export * from '@peculiar/x509';
