/*  nf_buf: see nf_buf.h. */
#include "nf_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
nf_buf_init (nf_buf_t *buf)
{
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
}

void
nf_buf_free (nf_buf_t *buf)
{
    free (buf->data);
    nf_buf_init (buf);
}

void
nf_buf_reset (nf_buf_t *buf)
{
    buf->len = 0;
    if (buf->data)
        buf->data[0] = 0;
}

static void
s_reserve (nf_buf_t *buf, size_t extra)
{
    if (buf->len + extra + 1 <= buf->cap)
        return;
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap < buf->len + extra + 1)
        cap *= 2;
    char *data = realloc (buf->data, cap);
    if (!data)
        abort ();
    data[buf->len] = 0; /* terminated even when nothing is appended after reserving */
    buf->data = data;
    buf->cap = cap;
}

void
nf_buf_append (nf_buf_t *buf, const void *data, size_t len)
{
    s_reserve (buf, len);
    if (len)
        memcpy (buf->data + buf->len, data, len);
    buf->len += len;
    buf->data[buf->len] = 0;
}

void
nf_buf_puts (nf_buf_t *buf, const char *text)
{
    nf_buf_append (buf, text, strlen (text));
}

void
nf_buf_printf (nf_buf_t *buf, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    int n = vsnprintf (NULL, 0, fmt, ap);
    va_end (ap);
    if (n < 0)
        return;
    s_reserve (buf, (size_t) n);
    va_start (ap, fmt);
    vsnprintf (buf->data + buf->len, (size_t) n + 1, fmt, ap);
    va_end (ap);
    buf->len += (size_t) n;
}

/* Length of the valid UTF-8 sequence at P (at most REMAIN bytes), or 0 when
   the bytes there are not one (overlongs, surrogates and > U+10FFFF refused). */
static size_t
s_utf8_seq (const unsigned char *p, size_t remain)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return c ? 1 : 0;
    size_t n;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    }
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    }
    else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    }
    else
        return 0;
    if (remain < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))
        || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

bool
nf_utf8_valid (const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *) text;
    size_t i = 0;
    while (i < len) {
        size_t n = s_utf8_seq (p + i, len - i);
        if (!n)
            return false;
        i += n;
    }
    return true;
}

static const char s_replacement[] = "\xEF\xBF\xBD";

void
nf_buf_utf8_repair (nf_buf_t *buf, const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *) text;
    size_t i = 0;
    s_reserve (buf, len);
    while (i < len) {
        size_t start = i;
        size_t n;
        for (;;) {
            while (i < len && p[i] < 0x80) /* ASCII, most of it: no sequence to check */
                i++;
            if (i == len || (n = s_utf8_seq (p + i, len - i)) == 0)
                break;
            i += n;
        }
        nf_buf_append (buf, text + start, i - start);
        if (i < len) {
            nf_buf_append (buf, s_replacement, 3);
            i++;
        }
    }
}

void
nf_buf_json_str (nf_buf_t *buf, const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *) text;
    size_t i = 0;
    s_reserve (buf, len + 2);
    nf_buf_append (buf, "\"", 1);
    while (i < len) {
        unsigned char c = p[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            size_t start = i;
            while (i < len && p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' && p[i] != '\\')
                i++;
            nf_buf_append (buf, text + start, i - start);
            continue;
        }
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char) c};
            nf_buf_append (buf, esc, 2);
            i++;
        }
        else if (c < 0x20 && c != 0) {
            nf_buf_printf (buf, "\\u%04x", c);
            i++;
        }
        else {
            size_t n = s_utf8_seq (p + i, len - i);
            if (n) {
                nf_buf_append (buf, text + i, n);
                i += n;
            }
            else {
                nf_buf_append (buf, s_replacement, 3);
                i++;
            }
        }
    }
    nf_buf_append (buf, "\"", 1);
}

nf_err_t
nf_buf_read_file (nf_buf_t *buf, const char *path, size_t max)
{
    FILE *f = fopen (path, "rb");
    if (!f)
        return NF_ERR_IO;
    char chunk[65536];
    size_t n, total = 0;
    while (total < max && (n = fread (chunk, 1, sizeof chunk, f)) > 0) {
        if (n > max - total)
            n = max - total;
        nf_buf_append (buf, chunk, n);
        total += n;
    }
    nf_err_t rc = ferror (f) ? NF_ERR_IO : NF_OK;
    fclose (f);
    return rc;
}
