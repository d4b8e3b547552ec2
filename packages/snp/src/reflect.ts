// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs the Reflect metadata
// polyfill loaded before it; every module that imports @peculiar/x509 imports this file first.
import 'reflect-metadata';
