import { AsyncLocalStorage } from 'node:async_hooks';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  defaultTextMapGetter,
  trace,
  type Attributes,
  type Context,
  type Tracer,
} from '@opentelemetry/api';
import { ExportResultCode, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource, detectResourcesSync, envDetectorSync } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

export { SpanKind };

export interface TracingOptions {
  readonly enabled: boolean;
  readonly api: boolean;
  readonly client: boolean;
}

/** Counts failed exports and logs the first one (and once a minute after), so an unreachable collector is seen but not flooded. */
class CountingExporter implements SpanExporter {
  private lastLog = 0;
  constructor(
    private readonly inner: SpanExporter,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    this.inner.export(spans, (r) => {
      if (r.code !== ExportResultCode.SUCCESS) {
        this.metrics.tracingExportFailures.inc();
        const now = Date.now();
        // The first failure, then at most one line every ten minutes: a collector that is down is said once, not per batch.
        if (this.lastLog === 0 || now - this.lastLog > 600_000) {
          this.lastLog = now;
          this.log.warn(
            { err: r.error?.message, spans: spans.length },
            'trace export failed; spans dropped (is the OTLP endpoint reachable?)',
          );
        }
      }
      done(r);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

const propagator = new W3CTraceContextPropagator();

/**
 * OpenTelemetry traces for the node. Created only when
 * `opentelemetry.enabled`: with it off the node holds no Tracing at all and
 * every traced path is the plain call (no span, no context, no closure).
 *
 * The provider is this node's own (the global OTel API is left to the
 * embedding app); the current span travels in an AsyncLocalStorage of our
 * own, so a publish made inside an API call or a client command is its
 * child, and a fan-out that the engine runs inside the publish (memory
 * engine) is the publish's child. The exporter is OTLP/HTTP, configured by
 * the standard OTEL_EXPORTER_OTLP_* variables; batching by OTEL_BSP_*.
 */
export class Tracing {
  readonly tracer: Tracer;
  readonly api: boolean;
  readonly client: boolean;
  private readonly provider: BasicTracerProvider;
  private readonly current = new AsyncLocalStorage<Context>();

  static create(opts: TracingOptions, nodeId: string, metrics: Metrics, log: Logger, exporter?: SpanExporter): Tracing | undefined {
    if (!opts.enabled) return undefined;
    return new Tracing(opts, nodeId, exporter ?? new OTLPTraceExporter(), metrics, log);
  }

  private constructor(opts: TracingOptions, nodeId: string, exporter: SpanExporter, metrics: Metrics, log: Logger) {
    this.api = opts.api;
    this.client = opts.client;
    // The 1.x SDK line: it supports every Node the project states (2.x needs Node >= 20.6).
    const resource = Resource.default()
      .merge(new Resource({ 'service.name': 'switchboard', 'service.instance.id': nodeId }))
      .merge(detectResourcesSync({ detectors: [envDetectorSync] }));
    this.provider = new BasicTracerProvider({
      resource,
      spanProcessors: [new BatchSpanProcessor(new CountingExporter(exporter, metrics, log))],
    });
    this.tracer = this.provider.getTracer('switchboard');
  }

  /** The parent a request's W3C `traceparent`/`tracestate` headers name (the root when they name none). */
  fromHeaders(headers: Record<string, string | string[] | undefined>): Context {
    return propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
  }

  /**
   * Runs `fn` in a span (child of `parent`, else of the current span), with
   * the span current for everything `fn` starts. A thrown error or a
   * result `failed` says is an error ends the span with an error status.
   */
  run<T>(
    name: string,
    kind: SpanKind,
    attributes: Attributes,
    fn: () => Promise<T>,
    parent?: Context,
    failed?: (r: T) => string | undefined,
  ): Promise<T> {
    const ctx = parent ?? this.current.getStore() ?? ROOT_CONTEXT;
    const span = this.tracer.startSpan(name, { kind, attributes }, ctx);
    return this.current.run(trace.setSpan(ctx, span), fn).then(
      (r) => {
        const err = failed?.(r);
        if (err !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: err });
        span.end();
        return r;
      },
      (e: unknown) => {
        span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.message : String(e) });
        span.end();
        throw e;
      },
    );
  }

  /** One span around a synchronous job (a publication's fan-out on this node), child of the current span if any. */
  runSync(name: string, attributes: Attributes, fn: () => void): void {
    const span = this.tracer.startSpan(name, { kind: SpanKind.CONSUMER, attributes }, this.current.getStore() ?? ROOT_CONTEXT);
    try {
      fn();
    } finally {
      span.end();
    }
  }

  /** Exports what is buffered (tests, shutdown). */
  flush(): Promise<void> {
    return this.provider.forceFlush();
  }

  /** Exports what is left, waiting at most two seconds (a collector that is away must not hold up a node's exit). */
  async shutdown(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.provider.shutdown().catch(() => undefined),
      new Promise<void>((r) => {
        timer = setTimeout(r, 2000);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }
}
