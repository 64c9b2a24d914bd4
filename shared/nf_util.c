/*  nf_util: see nf_util.h. */
#include "nf_util.h"

#include <arpa/inet.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool
nf_word_in (const char *list, const char *word, size_t wlen)
{
    const char *p = list;
    while (*p) {
        const char *end = strchr (p, ' ');
        size_t len = end ? (size_t) (end - p) : strlen (p);
        if (len == wlen && strncmp (p, word, len) == 0)
            return true;
        if (!end)
            break;
        p = end + 1;
    }
    return false;
}

/* Digits at P..P+N as a number, or -1. */
static int
s_digits (const char *p, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

nf_err_t
nf_time_parse (const char *text, size_t len, double *epoch)
{
    if (!text || len < 10 || text[4] != '-' || text[7] != '-')
        return NF_ERR_INVALID;
    int y = s_digits (text, 4), mo = s_digits (text + 5, 2), d = s_digits (text + 8, 2);
    int h = 0, mi = 0, sec = 0;
    double frac = 0, offset = 0;
    size_t i = 10;
    if (i < len && (text[i] == 'T' || text[i] == 't' || text[i] == ' ')) {
        if (len < i + 9 || text[i + 3] != ':' || text[i + 6] != ':')
            return NF_ERR_INVALID;
        h = s_digits (text + i + 1, 2);
        mi = s_digits (text + i + 4, 2);
        sec = s_digits (text + i + 7, 2);
        i += 9;
        if (i < len && (text[i] == '.' || text[i] == ',')) {
            double scale = 0.1;
            for (i++; i < len && text[i] >= '0' && text[i] <= '9'; i++, scale /= 10)
                frac += (text[i] - '0') * scale;
        }
        if (i < len && (text[i] == 'Z' || text[i] == 'z'))
            i++;
        else if (i < len && (text[i] == '+' || text[i] == '-')) {
            if (len < i + 3)
                return NF_ERR_INVALID;
            int oh = s_digits (text + i + 1, 2), om = 0;
            size_t next = i + 3;
            if (next < len && text[next] == ':')
                next++;
            if (next + 2 <= len) {
                om = s_digits (text + next, 2);
                next += 2;
            }
            if (oh < 0 || om < 0 || oh > 23 || om > 59)
                return NF_ERR_INVALID;
            offset = (text[i] == '-' ? -1 : 1) * (oh * 3600.0 + om * 60.0);
            i = next;
        }
    }
    if (i != len || y < 1900 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0
        || mi > 59 || sec < 0 || sec > 60)
        return NF_ERR_INVALID;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    time_t t = timegm (&tm);
    if (tm.tm_mday != d) /* 2026-02-30 normalizes to March */
        return NF_ERR_INVALID;
    *epoch = (double) t + frac - offset;
    return NF_OK;
}

int64_t
nf_clock_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
nf_clock_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
nf_backoff_ms (int attempt, int64_t base_ms, int64_t cap_ms, double random)
{
    if (attempt < 1)
        attempt = 1;
    int64_t d = base_ms;
    for (int i = 1; i < attempt && d < cap_ms; i++)
        d *= 2;
    if (d > cap_ms)
        d = cap_ms;
    if (random < 0)
        random = 0;
    if (random >= 1)
        random = 0.999999;
    return d / 2 + (int64_t) ((double) (d - d / 2) * random);
}

nf_err_t
nf_inet_parse (const char *text, struct sockaddr_in *addr, char *err, size_t errlen)
{
    char host[64];
    const char *colon = strrchr (text, ':');
    char *end = NULL;
    long port = colon ? strtol (colon + 1, &end, 10) : -1;
    size_t hl = colon ? (size_t) (colon - text) : 0;
    if (!colon || !colon[1] || *end || port < 0 || port > 65535 || hl >= sizeof host) {
        snprintf (err, errlen, "'%s' is not ADDRESS:PORT", text);
        return NF_ERR_INVALID;
    }
    memcpy (host, text, hl);
    host[hl] = 0;
    memset (addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons ((uint16_t) port);
    if (strcmp (host, "*") == 0 || strcmp (host, "0.0.0.0") == 0 || !*host)
        addr->sin_addr.s_addr = htonl (INADDR_ANY);
    else if (inet_pton (AF_INET, host, &addr->sin_addr) != 1) {
        snprintf (err, errlen, "'%s': '%s' is not an IPv4 address", text, host);
        return NF_ERR_INVALID;
    }
    return NF_OK;
}

bool
nf_inet_loopback (const struct sockaddr_in *addr)
{
    return (ntohl (addr->sin_addr.s_addr) >> 24) == 127;
}
