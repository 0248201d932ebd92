// Sends one LLM trace to a Lanterna server with the OpenTelemetry JS SDK's
// OTLP/HTTP JSON exporter (@opentelemetry/exporter-trace-otlp-http), as a
// Node.js app would. Usage: node otlp_json.mjs BASE_URL [SECRET_KEY]
// Prints {"trace_id", "root", "chat", "tool"}: the ids the SDK made.
import { context, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';

const [base, secret] = process.argv.slice(2);
const exporter = new OTLPTraceExporter({
  url: `${base}/v1/traces`,
  headers: secret ? { Authorization: `Bearer ${secret}` } : {},
});
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'js-support-bot', 'deployment.environment.name': 'staging' }),
  spanProcessors: [new BatchSpanProcessor(exporter)],
});
trace.setGlobalTracerProvider(provider);
const tracer = trace.getTracer('support-bot', '2.3.0');
const ids = {};

await tracer.startActiveSpan('handle-request', { kind: SpanKind.SERVER }, async (root) => {
  ids.trace_id = root.spanContext().traceId;
  ids.root = root.spanContext().spanId;
  root.setAttributes({ 'user.id': 'js-user-7', 'session.id': 'js-session-1' });
  await tracer.startActiveSpan('chat gpt-4o-mini', {
    kind: SpanKind.CLIENT,
    attributes: {
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
      'gen_ai.request.temperature': 0.7,
      'gen_ai.request.max_tokens': 256,
      'gen_ai.usage.input_tokens': 120,
      'gen_ai.usage.output_tokens': 30,
      'gen_ai.response.finish_reasons': ['stop'],
      'gen_ai.input.messages': JSON.stringify([
        { role: 'system', parts: [{ type: 'text', content: 'You answer billing questions.' }] },
        { role: 'user', parts: [{ type: 'text', content: 'Why was I charged twice?' }] },
      ]),
      'gen_ai.output.messages': JSON.stringify([
        { role: 'assistant', parts: [{ type: 'text', content: 'The second charge is a pending hold.' }],
          finish_reason: 'stop' },
      ]),
    },
  }, async (chat) => {
    ids.chat = chat.spanContext().spanId;
    await new Promise((r) => setTimeout(r, 5));
    chat.end();
  });
  const tool = tracer.startSpan('execute_tool lookup_invoice', {
    attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'lookup_invoice' },
  });
  ids.tool = tool.spanContext().spanId;
  tool.recordException(new Error('invoice 42 not found'));
  tool.setStatus({ code: SpanStatusCode.ERROR, message: 'invoice 42 not found' });
  tool.end();
  root.end();
});
await provider.forceFlush();
await provider.shutdown();
console.log(JSON.stringify(ids));
