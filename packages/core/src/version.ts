/** This package's version, sent to the server on registration (kept equal to package.json by a test). */
export const VERSION = '0.1.0';
