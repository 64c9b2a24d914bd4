/*  nf_buf: the ground floor. A growable byte buffer, JSON string escaping
    with UTF-8 repair, and UTF-8 validation: what the wire codec (proto/)
    and the library (shared/) both build on. Depends on libc only; pure
    (no I/O but nf_buf_read_file, no shared state), safe from any thread. */
#ifndef NF_BUF_H
#define NF_BUF_H

#include "nf_err.h"
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
   not read). NF_OK, or NF_ERR_IO with errno set when the file cannot be opened
   or read. */
nf_err_t nf_buf_read_file (nf_buf_t *buf, const char *path, size_t max);

/* True when TEXT (LEN bytes) is valid UTF-8 without NUL bytes. */
bool nf_utf8_valid (const char *text, size_t len);

#endif
