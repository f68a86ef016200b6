import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { k8sManifestDefaults, resolveK8sManifestOptions, type K8sManifestOptions } from '../../src/k8s/options';

const ROOT = join(__dirname, '..', '..', '..', '..');

describe('resolveK8sManifestOptions', () => {
  test('the default image tag is the package version', () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'packages/server/package.json'), 'utf8')) as { version: string };
    expect(k8sManifestDefaults.image).toBe(`devtunnel-server:${version}`);
  });

  test.each([
    ['tunnelPorts', { tunnelPorts: '9100-9000' }],
    ['tunnelPorts', { tunnelPorts: 'all' }],
    ['tunnelPorts', { tunnelPorts: '1-30000' }],
    ['port', { port: 9050 }],
    ['port', { port: 0 }],
    ['namespace', { namespace: 'Dev_Tunnel' }],
    // Shared namespaces would get the Namespace document's Pod Security label.
    ['namespace', { namespace: 'default' }],
    ['namespace', { namespace: 'kube-system' }],
    ['image', { image: 'has space' }],
    ['host', { host: 'https://devtunnel.example.com' }],
    ['stateFile', { stateFile: 'state.json' }],
    ['stateFile', { stateFile: '/state.json' }],
    ['stateFile', { stateFile: '/data/../state.json' }],
    // A volume over the image's /app (or /usr, /etc…) hides the server itself: the pod crash-loops.
    ['stateFile', { stateFile: '/app/state.json' }],
    ['stateFile', { stateFile: '/usr/state.json' }],
    ['stateFile', { stateFile: '/etc/state.json' }],
    ['stateFile', { stateFile: '/proc/devtunnel/state.json' }],
    ['ingressClass', { ingressClass: 'Nginx!' }],
    ['allowFrom', { allowFrom: 'ingress-nginx' }],
    ['allowFrom', { allowFrom: 'a=b,c' }],
  ])('refuses a bad %s, naming it', (option, patch) => {
    expect(() => resolveK8sManifestOptions(patch as K8sManifestOptions)).toThrow(expect.objectContaining({ code: 'invalid_option', message: expect.stringContaining(`"${option}"`) }));
  });
});
