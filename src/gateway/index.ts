export { costOf, type ModelPrice, priceOf } from "./prices.ts";
