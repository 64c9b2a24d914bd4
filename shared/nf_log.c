/*  nf_log: see nf_log.h. The settings are process-wide by nature (stderr is);
    they are written once by nf_log_init from main and only read afterwards. */
#include "nf_log.h"
#include "nf_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static struct {
    char identity[64];    /* program name shown on each line */
    nf_log_level_t level; /* events below this level are dropped */
    bool json;            /* JSON lines instead of plain text */
} s_log = {"nicheflow", NF_LOG_INFO, false};

static const char *s_names[] = {"debug", "info", "warn", "error"};

void
nf_log_init (const char *identity, nf_log_level_t level, bool json)
{
    snprintf (s_log.identity, sizeof s_log.identity, "%s", identity ? identity : "nicheflow");
    s_log.level = level;
    s_log.json = json;
}

nf_err_t
nf_log_level_parse (const char *text, nf_log_level_t *level)
{
    for (int i = 0; i < 4; i++)
        if (text && strcmp (text, s_names[i]) == 0) {
            *level = (nf_log_level_t) i;
            return NF_OK;
        }
    return NF_ERR_INVALID;
}

bool
nf_log_enabled (nf_log_level_t level)
{
    return level >= s_log.level;
}

/* MSG with control characters escaped (\n, \r, \t, \xHH), so that text
   from outside (a title, an error body) can neither start a forged log
   line nor move the terminal's cursor. UTF-8 is kept as it is. */
static void
s_escape (const char *msg, char *out, size_t cap)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *) msg; *p && o + 5 < cap; p++) {
        if (*p >= 0x20 && *p != 0x7f) {
            out[o++] = (char) *p;
            continue;
        }
        out[o++] = '\\';
        if (*p == '\n' || *p == '\r' || *p == '\t')
            out[o++] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
        else
            o += (size_t) snprintf (out + o, cap - o, "x%02x", *p);
    }
    out[o] = 0;
}

void
nf_log (nf_log_level_t level, const char *fmt, ...)
{
    if (level < s_log.level)
        return;
    char msg[2048];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (msg, sizeof msg, fmt, ap);
    va_end (ap);

    struct timeval tv;
    gettimeofday (&tv, NULL);
    struct tm tm;
    gmtime_r (&tv.tv_sec, &tm);
    char ts[64];
    snprintf (ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
              tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
              (int) (tv.tv_usec / 1000));
    if (s_log.json) {
        nf_buf_t line;
        nf_buf_init (&line);
        nf_buf_printf (&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"proc\":", ts, s_names[level]);
        nf_buf_json_str (&line, s_log.identity, strlen (s_log.identity));
        nf_buf_printf (&line, ",\"pid\":%d,\"msg\":", (int) getpid ());
        nf_buf_json_str (&line, msg, strlen (msg));
        nf_buf_puts (&line, "}\n");
        fwrite (line.data, 1, line.len, stderr);
        nf_buf_free (&line);
    }
    else {
        char safe[sizeof msg * 4];
        s_escape (msg, safe, sizeof safe);
        fprintf (stderr, "%s %-5s %s[%d] %s\n", ts, s_names[level], s_log.identity, (int) getpid (),
                 safe);
    }
}
