/* duration.h - the one parser of durations for every flag and config key that
 * takes one (`record -d`, `--window`, the agent's retention and deploy-check
 * keys, ...), so `5s` means the same everywhere.
 *
 * A duration is a plain decimal number of seconds ("10", "0.5") or a decimal
 * number with one unit: ms, s, m, h, d ("250ms", "5s", "2m", "1.5h", "7d").
 * No sign, space, exponent, hex, inf or nan: what a value means is what it
 * looks like. Longer than DURATION_MAX_S is refused.
 */
#ifndef DYNOPROF_DURATION_H
#define DYNOPROF_DURATION_H

/* 100 years of 365 days: above any real setting, far below a double's precision
 * limits, and what the agent's config always refused above. */
#define DURATION_MAX_S (100.0 * 365 * 86400)

/* The units a duration takes, for messages: "ms, s, m, h, d". */
#define DURATION_UNITS "ms, s, m, h, d"

/* Parses text into *seconds. Returns 0, or -EINVAL (leaving *seconds as it
 * was) for anything that is not a duration or is longer than DURATION_MAX_S. */
int duration__parse(const char *text, double *seconds);

#endif
