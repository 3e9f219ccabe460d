/** An answer of toxiproxy's API other than success: its status and `{"error", "status"}` body. */
import { TcpProxyError } from '../errors/errors.js';
export class ApiError extends TcpProxyError {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super('toxiproxy_api', message);
  }

  /** toxiproxy's `joinError`: a generic message with the detail after a colon. */
  static badBody(detail: string): ApiError {
    return new ApiError(`bad request body: ${detail}`, 400);
  }

  static missingField(field: string): ApiError {
    return new ApiError(`missing required field: ${field}`, 400);
  }

  toJSON(): { error: string; status: number } {
    return { error: this.message, status: this.status };
  }
}

export const PROXY_NOT_FOUND = (): ApiError => new ApiError('proxy not found', 404);
export const PROXY_EXISTS = (): ApiError => new ApiError('proxy already exists', 409);
export const TOXIC_NOT_FOUND = (): ApiError => new ApiError('toxic not found', 404);
export const TOXIC_EXISTS = (): ApiError => new ApiError('toxic already exists', 409);
export const INVALID_TOXIC_TYPE = (): ApiError => new ApiError('invalid toxic type', 400);
export const INVALID_STREAM = (): ApiError => new ApiError('stream was invalid, can be either upstream or downstream', 400);
