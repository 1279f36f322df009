/** The build writes this file in dist/ last, with the time the build started. */
export declare const STAMP: string;
/** Undefined when `<root>/dist` is a complete build of `<root>/src` as it is now; else why not. */
export declare function whyNotBuilt(root: string): string | undefined;
