// Where embedded mode keeps its PGlite database and its token secret, relative to the
// working directory unless DISPATCH_DATA_DIR says otherwise.
export const DEFAULT_DATA_DIR = process.env.DISPATCH_DATA_DIR ?? '.dispatch';
