// Runs eureka-js-client, a standard Eureka client from npm, against a
// Eureka server (our registry, in tests/interop.rs), as a Node service
// would use it: register, be listed UP, find MIDDLETIER by app and by VIP
// in the client's copy of the registry, then stop and deregister.
//
// Usage: node eureka_check.js <eureka-url> <middletier-instance-id>
// Prints one JSON object with what it saw; exits non-zero on any failure.
'use strict';

const { Eureka } = require('eureka-js-client');

const [url, middletierId] = process.argv.slice(2);
const server = new URL(url);
const quiet = { debug() {}, info() {}, warn() {}, error: console.error };

const client = new Eureka({
  logger: quiet,
  instance: {
    app: 'jscheck',
    instanceId: 'jscheck-1',
    hostName: '127.0.0.1',
    ipAddr: '127.0.0.1',
    port: { $: 9998, '@enabled': true },
    vipAddress: 'jscheck',
    statusPageUrl: 'http://127.0.0.1:9998/status',
    dataCenterInfo: {
      '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo',
      name: 'MyOwn',
    },
  },
  eureka: {
    host: server.hostname,
    port: Number(server.port),
    // The client fetches `${servicePath}` itself, i.e. `apps/`.
    servicePath: `${server.pathname.replace(/\/$/, '')}/apps/`,
    maxRetries: 0,
    heartbeatInterval: 1000,
    registryFetchInterval: 1000,
  },
});

const ids = (instances) => instances.map((i) => `${i.instanceId}:${i.status}`).sort();
const fail = (what, err) => {
  console.error(`${what}: ${err}`);
  process.exit(1);
};

client.start((err) => {
  if (err) fail('start', err);
  // A fresh full fetch, so our own registration is in the copy too.
  client.fetchRegistry((err) => {
    if (err) fail('fetch', err);
    const seen = {
      self: ids(client.getInstancesByAppId('JSCHECK')),
      by_app: ids(client.getInstancesByAppId('MIDDLETIER')),
      by_vip: ids(client.getInstancesByVipAddress('middletier')),
    };
    client.stop((err) => {
      if (err) fail('stop', err);
      client.fetchRegistry(() => {
        seen.after_stop = ids(client.getInstancesByAppId('JSCHECK'));
        console.log(JSON.stringify(seen));
        const up = `${middletierId}:UP`;
        const ok = seen.self.includes('jscheck-1:UP') &&
          seen.by_app.includes(up) && seen.by_vip.includes(up) &&
          seen.after_stop.length === 0;
        process.exit(ok ? 0 : 1);
      });
    });
  });
});
