/** The error table and the DinomoError type: the only way dinomo reports operating errors. */
export {
  ErrorCodes,
  errorCodeList,
  errorCodeFromWire,
  errorCodeToWire,
  type ErrorCode,
} from './codes.js';
export {
  DinomoError,
  isDinomoError,
  toWireError,
  fromWireError,
  type WireError,
  type ErrorOrigin,
} from './dinomo-error.js';
