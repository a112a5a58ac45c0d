/**
 * The unit the size caps are set and stated in ("at most 8 MiB (8388608 bytes)"). One constant,
 * here in the lowest layer, so the stages and the CLI that each state a cap in MiB cannot come to
 * disagree on what a MiB is.
 */
export const MIB = 1024 * 1024;
