/** The YAML the manifests are written in: quoting both YAML versions read alike, comments above keys. */
import { Document, isNode, isScalar, visit, type CreateNodeOptions, type DocumentOptions, type Node, type SchemaOptions, type ToStringOptions } from 'yaml';

/**
 * Kubernetes reads YAML 1.1 (go-yaml: `on`, `yes`, `0x1F`, `1:20` are not strings there), the yaml
 * library and most tools 1.2: `compat` quotes every string that either version would take for
 * anything else. No anchors where a JS object is used twice: each manifest reads on its own.
 */
const documentOptions = { compat: 'yaml-1.1', aliasDuplicateObjects: false } satisfies DocumentOptions & SchemaOptions & CreateNodeOptions;

/** Every scalar on its own line: no folding of long values (an image digest), no block scalars. */
const textOptions = { lineWidth: 0, blockQuote: false } satisfies ToStringOptions;

/** One string as the manifests write it: a scalar YAML 1.1 and 1.2 readers both read back as that string. */
export function yamlString(text: string): string {
  return new Document(text, documentOptions).toString(textOptions).replace(/\n$/, '');
}

/** Comment lines as the yaml library takes them: it puts the `#` before each. */
const commentText = (lines: string | readonly string[]) => (typeof lines === 'string' ? [lines] : lines).map((line) => ` ${line}`).join('\n');

/** `value` with comment lines above it: above its key in a map, above its `-` in a list. */
export function note(lines: string | readonly string[], value: unknown): Node {
  const node = new Document(value, documentOptions).contents as Node;
  node.commentBefore = commentText(lines);
  return node;
}

/** One manifest with its comment lines above it. */
export function manifest(comment: readonly string[], body: Record<string, unknown>): Document {
  const doc = new Document(body, documentOptions);
  (doc.contents as Node).commentBefore = commentText(comment);
  // The library writes a map value's comment between its key and the value; a reader looks for it
  // above the key, where the comment of a list item is (above its `-`).
  visit(doc, {
    Pair(_, pair) {
      if (isNode(pair.value) && pair.value.commentBefore && isScalar(pair.key)) {
        pair.key.commentBefore = pair.value.commentBefore;
        pair.value.commentBefore = undefined;
      }
    },
  });
  return doc;
}

/** One word of a shell command line: quoted when the shell would read it otherwise (`;` in a route). */
export function shellWord(text: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** The manifests, each after `---`, the first preceded by the `header` comment. */
export function yamlStream(header: readonly string[], documents: readonly Document[]): string {
  documents[0]!.commentBefore = commentText(header);
  return documents.map((doc) => doc.toString({ ...textOptions, directives: true })).join('');
}
