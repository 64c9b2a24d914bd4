/*  nf_feed: see nf_feed.h. */
#include "nf_feed.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define RING(a) (sizeof (a) / sizeof (a)[0])

void
nf_feed_classify (const char *reason, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = reason; *p && n + 2 < cap;) {
        if (isdigit ((unsigned char) *p)) {
            bool http = p - reason >= 5 && strncmp (p - 5, "HTTP ", 5) == 0;
            const char *q = p;
            while (isdigit ((unsigned char) *q))
                q++;
            if (http)
                while (p < q && n + 2 < cap)
                    out[n++] = *p++;
            else
                out[n++] = '#';
            p = q;
        }
        else
            out[n++] = *p++;
    }
    /* A cut may have split a UTF-8 sequence at the end: drop its bytes. */
    size_t lead = n;
    while (lead > 0 && ((unsigned char) out[lead - 1] & 0xC0) == 0x80)
        lead--;
    if (lead > 0 && ((unsigned char) out[lead - 1] & 0x80)) {
        unsigned char c = (unsigned char) out[lead - 1];
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (n - (lead - 1) < need)
            n = lead - 1;
    }
    if (cap)
        out[n] = 0;
}

static void
s_ring_add (int64_t *ring, size_t cap, size_t *n, int64_t at)
{
    ring[*n % cap] = at;
    (*n)++;
}

static size_t
s_ring_recent (const int64_t *ring, size_t cap, size_t n, int64_t now)
{
    size_t c = 0;
    for (size_t i = 0; i < n && i < cap; i++)
        c += now - ring[i] <= NF_FEED_WINDOW_MS;
    return c;
}

static size_t
s_class_recent (const nf_feed_class_t *c, int64_t now)
{
    return s_ring_recent (c->at, RING (c->at), c->n, now);
}

void
nf_feed_event (nf_feed_t *self, const json_t *ev, int64_t now)
{
    const char *from = json_string_value (json_object_get (ev, "from"));
    const char *to = json_string_value (json_object_get (ev, "to"));
    const char *reason = json_string_value (json_object_get (ev, "reason"));
    if (!json_is_string (json_object_get (ev, "video_id")) || !to)
        return;
    bool retry = from && strcmp (from, to) == 0, failed = strcmp (to, "FAILED") == 0;
    if (retry)
        s_ring_add (self->retries, RING (self->retries), &self->nretry, now);
    if (failed)
        s_ring_add (self->failures, RING (self->failures), &self->nfail, now);
    if (!(retry || failed) || !reason || !*reason)
        return;
    char cls[96];
    nf_feed_classify (reason, cls, sizeof cls);
    nf_feed_class_t *c = NULL;
    for (size_t i = 0; i < NF_FEED_CLASSES && !c; i++)
        if (self->classes[i].n == 0 || strcmp (self->classes[i].text, cls) == 0)
            c = &self->classes[i];
    if (!c) { /* all taken: reuse the quietest */
        c = &self->classes[0];
        for (size_t i = 1; i < NF_FEED_CLASSES; i++)
            if (s_class_recent (&self->classes[i], now) < s_class_recent (c, now))
                c = &self->classes[i];
        c->n = 0;
    }
    snprintf (c->text, sizeof c->text, "%s", cls);
    s_ring_add (c->at, RING (c->at), &c->n, now);
}

size_t
nf_feed_failures (const nf_feed_t *self, int64_t now)
{
    return s_ring_recent (self->failures, RING (self->failures), self->nfail, now);
}

size_t
nf_feed_retries (const nf_feed_t *self, int64_t now)
{
    return s_ring_recent (self->retries, RING (self->retries), self->nretry, now);
}

size_t
nf_feed_top (const nf_feed_t *self, int64_t now, size_t *which, size_t *counts, size_t max)
{
    bool shown[NF_FEED_CLASSES] = {false};
    size_t k = 0;
    for (; k < max; k++) {
        size_t best = NF_FEED_CLASSES, best_n = 0;
        for (size_t c = 0; c < NF_FEED_CLASSES; c++) {
            size_t n =
                self->classes[c].n && !shown[c] ? s_class_recent (&self->classes[c], now) : 0;
            if (n > best_n) {
                best = c;
                best_n = n;
            }
        }
        if (best == NF_FEED_CLASSES)
            break;
        shown[best] = true;
        which[k] = best;
        counts[k] = best_n;
    }
    return k;
}

void
nf_feed_stats (nf_feed_t *self, json_t *stats, int64_t now)
{
    json_decref (self->prev_stats);
    self->prev_stats = self->stats;
    self->stats = json_incref (stats);
    self->stats_dt = self->stats_at ? (double) (now - self->stats_at) / 1000.0 : 0;
    self->stats_at = now;
}

void
nf_feed_clear (nf_feed_t *self)
{
    json_decref (self->stats);
    json_decref (self->prev_stats);
    self->stats = self->prev_stats = NULL;
}

json_t *
nf_feed_rates (const nf_feed_t *self)
{
    json_t *rates = json_object ();
    double dt = self->stats_dt;
    const json_t *now_s = json_object_get (self->stats, "services");
    const json_t *then_s = json_object_get (self->prev_stats, "services");
    const char *name;
    json_t *sv;
    json_object_foreach ((json_t *) now_s, name, sv)
    {
        json_int_t replies = json_integer_value (json_object_get (sv, "replies"));
        const json_t *before = json_object_get (json_object_get (then_s, name), "replies");
        json_int_t was = json_integer_value (before);
        double rate = dt > 0 && before && replies >= was ? (double) (replies - was) / dt : 0;
        json_object_set_new (rates, name, json_real (rate));
    }
    return rates;
}
