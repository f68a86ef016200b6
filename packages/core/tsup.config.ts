import { defineConfig } from 'tsup';
import { cli, library } from '../../tsup.base';

export default defineConfig([library({ index: 'src/index.ts', protocol: 'src/protocol/index.ts' }), cli]);
