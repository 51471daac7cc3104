import { AffixFraming, type StreamFraming } from './stream-framing.js';

/**
 * HTTP-streaming (`/connection/http_stream`) framing, as centrifuge-js's
 * HttpStreamTransport reads the response body: JSON replies one per line
 * (newline-terminated); Protobuf replies back to back, each already
 * varint-length-delimited by the codec.
 */
export const httpStreamJson: StreamFraming = new AffixFraming('application/json', '', '\n');
export const httpStreamProtobuf: StreamFraming = new AffixFraming('application/octet-stream', '', '');

/** The initial request's encoding, as the SDK declares it (and centrifuge reads it): its Content-Type. */
export function httpStreamIsProtobuf(contentType: string | undefined): boolean {
  return contentType !== undefined && contentType.split(';')[0]!.trim().toLowerCase() === 'application/octet-stream';
}
