export type StoreErrorCode =
  | 'STORE_ERR_CONFIG' // store.url is not usable
  | 'STORE_ERR_CONNECT' // the database cannot be opened or reached
  | 'STORE_ERR_MIGRATION' // the schema could not be brought up to date
  | 'STORE_ERR_DUPLICATE' // the row exists already
  | 'STORE_ERR_NOT_FOUND' // no such row
  | 'STORE_ERR_IN_USE' // other rows still refer to it
  | 'STORE_ERR_CLOSED' // the store was closed
  | 'STORE_ERR_INVALID' // the database refused the values (a constraint or type violation): trying again cannot help
  | 'STORE_ERR_QUERY'; // any other database failure

/**
 * Every store failure. Messages never carry a password (URLs are masked) nor SQL with its bound
 * values (those hold HA1s, which are as good as passwords).
 */
export class StoreError extends Error {
  readonly code: StoreErrorCode;
  /** The configuration key to blame, for STORE_ERR_CONFIG / STORE_ERR_CONNECT. */
  readonly key: string | undefined;

  constructor(code: StoreErrorCode, message: string, key?: string) {
    super(message);
    this.name = 'StoreError';
    this.code = code;
    this.key = key;
  }
}
