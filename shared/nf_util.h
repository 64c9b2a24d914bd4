/*  nf_util: small helpers the library and the programs need: word lists,
    time parsing, monotonic time and the retry backoff formula. The byte
    buffer and UTF-8 handling are one floor down, in base/nf_buf.h. */
#ifndef NF_UTIL_H
#define NF_UTIL_H

#include "nf_buf.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when WORD (WLEN bytes) is one of the space-separated words of LIST. */
bool nf_word_in (const char *list, const char *word, size_t wlen);

/* Parse an ISO 8601 / RFC 3339 time ("2026-11-21", "2026-11-21T10:00:00Z",
   "2026-11-21 10:00:00.123456+01:00") of LEN bytes into seconds since the
   epoch (UTC). NF_OK, or NF_ERR_INVALID when TEXT is not such a time. */
nf_err_t nf_time_parse (const char *text, size_t len, double *epoch);

/* Milliseconds on a monotonic clock. */
int64_t nf_clock_ms (void);
/* Monotonic microseconds. */
int64_t nf_clock_us (void);

/* Capped exponential backoff with "equal jitter": for attempt N (1-based)
   the delay lies in [d/2, d] where d = min (cap, base * 2^(N-1)).
   RANDOM is a value in [0, 1) supplied by the caller (testable). */
int64_t nf_backoff_ms (int attempt, int64_t base_ms, int64_t cap_ms, double random);

/* An IPv4 ADDRESS:PORT ("127.0.0.1:8090"; "*", "0.0.0.0" or nothing
   before the colon: every address; port 0: any free one) into *ADDR.
   NF_OK, or NF_ERR_INVALID with ERR naming what is wrong. */
nf_err_t nf_inet_parse (const char *text, struct sockaddr_in *addr, char *err, size_t errlen);

/* True when ADDR is a loopback address (127.0.0.0/8). */
bool nf_inet_loopback (const struct sockaddr_in *addr);

#endif
