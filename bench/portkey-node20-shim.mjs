// Loaded into Portkey's gateway (node --import) by bench:gateway so that its streams work on
// Node 20. Portkey builds a streamed response as `new Response(body, upstreamResponse)` and
// then appends headers to it. @hono/node-server's Response (installed as the global one)
// keeps `upstreamResponse.headers` as they are, and a fetch response's headers are
// immutable, so every stream fails with "TypeError: immutable". This passes a plain init
// with a copy of the headers instead, which is what the call means. Nothing else changes.
const wrap = (Native) =>
  class Response extends Native {
    constructor(body, init) {
      if (init && typeof init === 'object' && init.headers instanceof Headers && 'bodyUsed' in init) {
        init = { status: init.status, statusText: init.statusText, headers: new Headers(init.headers) };
      }
      super(body, init);
    }
  };
const defineProperty = Object.defineProperty;
Object.defineProperty = function (target, key, descriptor) {
  if (target === globalThis && key === 'Response' && descriptor && typeof descriptor.value === 'function') {
    descriptor = { ...descriptor, value: wrap(descriptor.value) };
  }
  return defineProperty(target, key, descriptor);
};
