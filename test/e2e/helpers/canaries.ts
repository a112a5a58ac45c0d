/**
 * What a leak of the tests' card and SSN canaries looks like in a response, a record or a log.
 * Not their first digits alone: a text holding a hex id, a hash, a uuid or a number (a request id,
 * a record's hash chain, a memory figure) holds "4111" or "536-22" by chance now and then (one
 * such failed CI on 'd44111372…'). These match the canary whole or in part, in every layout the
 * tests send it in, and nothing a hex, uuid or timestamp can hold.
 */

/**
 * The test card 4111 1111 1111 1111: twelve of its digits in a row (bare, spaced or dashed, its
 * first or its last twelve), or two of its groups with the separator between them.
 */
export const CARD_LEAK = /[14]111[ -]?1111[ -]?1111|[14]111[ -]1111/;

/**
 * The test SSN 536-22-1234: its nine digits (with or without dashes), or its first five with
 * their dash, unless two hex digits follow (a uuid's "…c536-22ab…", which an SSN never is).
 */
export const SSN_LEAK = /536-?22-?1234|536-22(?![0-9a-f]{2})/i;
