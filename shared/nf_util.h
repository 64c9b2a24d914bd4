/*  nf_util: small helpers every module needs: a growable byte buffer, JSON
    string escaping with UTF-8 repair, UTF-8 validation, monotonic time and
    the retry backoff formula. */
#ifndef NF_UTIL_H
#define NF_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer. Always NUL-terminated after the first append.
   Allocation failure aborts (the only out-of-memory policy nicheflow has). */
typedef struct {
    char *data; /* the bytes, owned */
    size_t len; /* bytes used, excluding the terminating NUL */
    size_t cap; /* bytes allocated */
} nf_buf_t;

void nf_buf_init (nf_buf_t *buf);
void nf_buf_free (nf_buf_t *buf);
void nf_buf_reset (nf_buf_t *buf);
void nf_buf_append (nf_buf_t *buf, const void *data, size_t len);
void nf_buf_puts (nf_buf_t *buf, const char *text);
void nf_buf_printf (nf_buf_t *buf, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
/* Append TEXT (LEN bytes) as a quoted JSON string. Invalid UTF-8 sequences
   and NUL bytes become U+FFFD, so the result is always valid JSON that
   PostgreSQL's jsonb accepts. */
void nf_buf_json_str (nf_buf_t *buf, const char *text, size_t len);
/* Append TEXT as UTF-8 with invalid sequences and NULs replaced by U+FFFD. */
void nf_buf_utf8_repair (nf_buf_t *buf, const char *text, size_t len);

/* Append the bytes of file PATH to BUF, at most MAX of them (the rest is
   not read). 0, or -1 with errno set when the file cannot be opened or read. */
int nf_buf_read_file (nf_buf_t *buf, const char *path, size_t max);

/* True when WORD (WLEN bytes) is one of the space-separated words of LIST. */
bool nf_word_in (const char *list, const char *word, size_t wlen);

/* True when TEXT (LEN bytes) is valid UTF-8 without NUL bytes. */
bool nf_utf8_valid (const char *text, size_t len);

/* Parse an ISO 8601 / RFC 3339 time ("2026-11-21", "2026-11-21T10:00:00Z",
   "2026-11-21 10:00:00.123456+01:00") of LEN bytes into seconds since the
   epoch (UTC). 0, or -1 when TEXT is not such a time. */
int nf_time_parse (const char *text, size_t len, double *epoch);

/* Milliseconds on a monotonic clock. */
int64_t nf_clock_ms (void);
/* Monotonic microseconds. */
int64_t nf_clock_us (void);

/* Capped exponential backoff with "equal jitter": for attempt N (1-based)
   the delay lies in [d/2, d] where d = min (cap, base * 2^(N-1)).
   RANDOM is a value in [0, 1) supplied by the caller (testable). */
int64_t nf_backoff_ms (int attempt, int64_t base_ms, int64_t cap_ms, double random);

#endif
