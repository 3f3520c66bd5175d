/**
 * Speed for the fuzz processes only: Handlebars' compile memoized by template source.
 *
 * The product compiles the templates in every builder (createBuilder → loadTemplates: a fresh
 * Handlebars environment, helpers, partials, compile on first render). The environment families
 * make a builder per accepted value, and compiling is about 8 ms of the 9 ms such a value costs.
 * Here each environment still gets its own helpers, partials and template objects (the
 * product's code runs as it is); only the parse → JavaScript step, a pure function of the source
 * and options, is done once per source and shared (Handlebars' own precompiled-template path:
 * `env.template(spec)`). Installed by pipeline.ts, so in fuzz test processes only.
 */
import Handlebars from 'handlebars';

type Env = typeof Handlebars;
type Compiled = ((context: unknown, options?: unknown) => string) & { _setup?: unknown; _child?: unknown };

const specs = new Map<string, unknown>();
const syntaxChecked = new Map<string, unknown>();
let installed = false;

export function memoizeHandlebarsCompile(): void {
  if (installed) return;
  installed = true;
  const create = Handlebars.create.bind(Handlebars);
  (Handlebars as { create: () => Env }).create = () => {
    const env = create();
    const parse = env.parse.bind(env);
    // templates.ts parses each file once for its syntax errors and drops the tree.
    (env as { parse: typeof env.parse }).parse = ((input: unknown, options?: unknown) => {
      if (typeof input !== 'string') return parse(input as never, options as never);
      let ast = syntaxChecked.get(input);
      if (ast === undefined) {
        ast = parse(input, options as never);
        syntaxChecked.set(input, ast);
      }
      return ast;
    }) as typeof env.parse;
    (env as { compile: unknown }).compile = (input: string, options: Record<string, unknown> = {}): Compiled => {
      const opts: Record<string, unknown> = { ...options };
      if (!('data' in opts)) opts.data = true;
      if (opts.compat) opts.useDepths = true;
      const key = JSON.stringify([input, opts]);
      let compiled: Compiled | undefined;
      const get = (): Compiled => {
        if (compiled === undefined) {
          let spec = specs.get(key);
          if (spec === undefined) {
            const e = env as unknown as { Compiler: new () => { compile(ast: unknown, o: unknown): unknown }; JavaScriptCompiler: new () => { compile(env: unknown, o: unknown, c: undefined, asObject: boolean): unknown } };
            spec = new e.JavaScriptCompiler().compile(new e.Compiler().compile(parse(input, opts as never), opts), opts, undefined, true);
            specs.set(key, spec);
          }
          compiled = env.template(spec as never) as unknown as Compiled;
        }
        return compiled;
      };
      const ret = function (this: unknown, context: unknown, execOptions?: unknown): string {
        return get().call(this, context, execOptions);
      } as Compiled;
      ret._setup = (o: unknown) => (get() as unknown as { _setup(o: unknown): unknown })._setup(o);
      ret._child = (i: unknown, d: unknown, b: unknown, dp: unknown) => (get() as unknown as { _child(...a: unknown[]): unknown })._child(i, d, b, dp);
      return ret;
    };
    return env;
  };
}
