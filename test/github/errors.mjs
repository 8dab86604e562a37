// The error a handler throws to answer with a GitHub-style error body.

export const kDocs = 'https://docs.github.com/rest';

export class HttpError extends Error {
  constructor(status, message, extra = {}) {
    super(message);
    this.status = status;
    this.extra = extra;
  }
}

export function errorBody(status, message, extra = {}) {
  return { message, documentation_url: kDocs, status: String(status), ...extra };
}
