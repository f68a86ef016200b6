import { defineConfig } from 'tsup';
import { libraryWithCli } from '../../tsup.base';

export default defineConfig(libraryWithCli({ index: 'src/index.ts', protocol: 'src/protocol/index.ts' }));
