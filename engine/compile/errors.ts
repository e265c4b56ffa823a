/** A tree that cannot be compiled. Nothing runs when one is thrown. */
export interface CompileErrorDetail {
  message: string;
  /** tree-relative file, e.g. `web/init.sls` */
  file?: string;
  line?: number;
  column?: number;
  sls?: string;
  /** state id the error is about */
  id?: string;
  /** `top.sls -> web -> web.nginx`: how the file was reached */
  includeChain?: string[];
}

export class CompileError extends Error {
  constructor(readonly errors: CompileErrorDetail[]) {
    super(errors.map(formatCompileError).join('\n'));
    this.name = 'CompileError';
  }
}

export function formatCompileError(e: CompileErrorDetail): string {
  let where = e.file ?? (e.sls ? `sls ${e.sls}` : '');
  if (where && e.line !== undefined) where += `:${e.line}${e.column !== undefined ? `:${e.column}` : ''}`;
  const parts = [where, e.id ? `state '${e.id}'` : ''].filter(Boolean).join(', ');
  const chain = e.includeChain && e.includeChain.length > 1 ? ` (included via ${e.includeChain.join(' -> ')})` : '';
  return `${parts ? parts + ': ' : ''}${e.message}${chain}`;
}
