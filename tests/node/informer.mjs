// An informer of @kubernetes/client-node against kargo server, driven line by line from stdin
// by the end-to-end test (crates/kargo-cli/tests/e2e/client_node.rs):
//   create NAME    creates a ServiceAccount through the client's CoreV1Api, prints "ok"
//   delete NAME    deletes it, prints "ok"
//   expect A,B,... waits (up to 30 s) until the informer's cache holds exactly these names,
//                  prints "ok" or "mismatch <names>"
// Usage: node informer.mjs KUBECONFIG NAMESPACE
import readline from 'node:readline';
import * as k8s from '@kubernetes/client-node';

const [kubeconfig, namespace] = process.argv.slice(2);
const kc = new k8s.KubeConfig();
kc.loadFromFile(kubeconfig);
const core = kc.makeApiClient(k8s.CoreV1Api);

const informer = k8s.makeInformer(
  kc,
  `/api/v1/namespaces/${namespace}/serviceaccounts`,
  () => core.listNamespacedServiceAccount({ namespace }),
);
let errors = 0;
// The informer stops on an error (the server restarting, a 410 Gone): start it again, as the
// client's documentation says to.
informer.on(k8s.ERROR, () => {
  errors += 1;
  setTimeout(() => informer.start().catch(() => {}), 500);
});

const cached = () =>
  informer
    .list(namespace)
    .map((sa) => sa.metadata.name)
    .filter((name) => name !== 'default')
    .sort();

async function expect(names) {
  const want = names.split(',').filter(Boolean).sort().join(',');
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (cached().join(',') === want) return 'ok';
    await new Promise((r) => setTimeout(r, 50));
  }
  return `mismatch ${cached().join(',')}`;
}

async function run(line) {
  const [command, arg = ''] = line.trim().split(/\s+/);
  switch (command) {
    case 'create':
      await core.createNamespacedServiceAccount({
        namespace,
        body: { metadata: { name: arg, labels: { app: 'client-node' } } },
      });
      return 'ok';
    case 'delete':
      await core.deleteNamespacedServiceAccount({ namespace, name: arg });
      return 'ok';
    case 'expect':
      return expect(arg);
    case 'errors':
      return `errors ${errors}`;
    default:
      return `unknown command ${command}`;
  }
}

await informer.start();
console.log('started');
const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  try {
    console.log(await run(line));
  } catch (e) {
    console.log(`failed ${e?.code ?? ''} ${e?.body ?? e?.message ?? e}`.replace(/\n/g, ' '));
  }
}
informer.stop();
