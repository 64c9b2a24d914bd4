/*  nf_feed: the operators' error feed, from the broker's progress events.
    A retry (an event whose from and to are the same state) or a failure
    (to FAILED) with a reason is counted under its class: the reason with
    its numbers blanked, so "HTTP 429 after 3 tries" and "... 4 tries" are
    one line. nf-monitor and nf-web show the same figures from it: the
    failures and retries of the last minute and the busiest classes.
    Not thread-safe: its owner locks. */
#ifndef NF_FEED_H
#define NF_FEED_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define NF_FEED_CLASSES   64
#define NF_FEED_WINDOW_MS 60000

typedef struct {
    char text[96];   /* the class: the reason with its numbers blanked */
    int64_t at[256]; /* times seen (ring), ms */
    size_t n;        /* entries added */
} nf_feed_class_t;

typedef struct {
    nf_feed_class_t classes[NF_FEED_CLASSES];
    int64_t failures[512], retries[512]; /* event times (rings), ms */
    size_t nfail, nretry;
    json_t *stats, *prev_stats; /* the last two nf.stats bodies (owned), or NULL */
    int64_t stats_at;           /* when the last arrived, ms */
    double stats_dt;            /* seconds between the last two */
} nf_feed_t;

/* The class of an error reason into OUT: digits blanked to '#', except an
   HTTP status ("HTTP 429" stays). */
void nf_feed_classify (const char *reason, char *out, size_t cap);

/* Count the video event EV (a decoded nf.job.* event: from, to, reason,
   video_id) seen at NOW (ms). Events that are neither a retry nor a
   failure are ignored. */
void nf_feed_event (nf_feed_t *self, const json_t *ev, int64_t now);

/* Keep the nf.stats body STATS (a new reference is taken) that arrived at
   NOW (ms) as the last, the last as the one before. */
void nf_feed_stats (nf_feed_t *self, json_t *stats, int64_t now);

/* Drop the stats bodies (the rest of the feed holds no memory). */
void nf_feed_clear (nf_feed_t *self);

/* Failures and retries within the window before NOW. */
size_t nf_feed_failures (const nf_feed_t *self, int64_t now);
size_t nf_feed_retries (const nf_feed_t *self, int64_t now);

/* The busiest classes within the window, most first: up to MAX indexes
   into self->classes in WHICH with their counts in COUNTS; how many. */
size_t nf_feed_top (const nf_feed_t *self, int64_t now, size_t *which, size_t *counts, size_t max);

/* Replies per second of each service between the last two nf.stats
   bodies: {service: rate} (new reference); 0 for a service the older body
   lacks or whose count went back (a restarted broker). */
json_t *nf_feed_rates (const nf_feed_t *self);

#endif
