/*  nf_scrape: the two stages of nf-scraper over nf_http, nf_youtube and
    nf_template. No msgpack here: tasks and results are jansson values, so
    the unit tests drive the stages directly against nf-ytsim.

    discover (per job)
      source `youtube` (default): search.list pages of 50 for "niche
      sub-niche" with the job's filters until `count` new videos (ids the
      job already has are skipped) or `max_pages`; then videos.list and
      channels.list in batches of 50 ids. Search hits that videos.list no
      longer returns (private, removed) are dropped and counted in the note.
      `quotaExceeded` stops discovery: the job keeps what was found, and the
      note says why.
      source `template:NAME`: the template's `listing` (start URL, item link
      XPath, next-page XPath, max_pages); each item page gives the meta and
      channel fields (see workers/README.md).
    scrape (per video)
      youtube: the watch page through the watch template (player response,
      playability, caption tracks), the chosen track's timed text to
      "[m:ss] text" lines. No captions: no transcript (the sanitizer
      rejects it), not an error.
      template: the item page's `transcript` field.

    Errors: a result says whether a later attempt may succeed. Removed,
    private or unavailable videos (404/410, playability not OK) and client
    errors (400, 401, 403 other than quota) are permanent; 5xx, timeouts,
    resets, blocks, cut or malformed bodies are retryable. */
#ifndef NF_SCRAPE_H
#define NF_SCRAPE_H

#include "nf_http.h"
#include "nf_innertube.h"
#include "nf_template.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *api_url;      /* NF_YOUTUBE_API_URL */
    const char *web_url;      /* NF_YOUTUBE_WEB_URL */
    const char *api_key;      /* NF_YOUTUBE_API_KEY */
    const char *template_dir; /* NF_TEMPLATE_DIR or "" */
    nf_http_t *http;          /* borrowed */
    nf_template_t *watch;     /* borrowed: the watch page template */
    nf_clients_t *clients;    /* borrowed: the innertube client profiles and chain */
    char consent[300];        /* "CONSENT=YES+..." once a consent form was answered */
    int baseline_uploads;     /* NF_BASELINE_UPLOADS: recent uploads read per channel */
    nf_http_t **lanes;        /* borrowed: NF_BASELINE_LANES clients that read the channels' */
    int nlanes;               /* uploads at once; 0 or 1: http alone, one after another */
} nf_scraper_t;

#define NF_SCRAPE_LANES_MAX 16

typedef struct {
    int64_t quota_units;    /* Data API units spent: list calls (cache hits cost none) */
    int64_t search_calls;   /* search.list calls: a daily bucket of their own */
    int64_t http_requests;  /* requests that went to the network */
    int64_t baseline_units; /* of quota_units: the channels' recent uploads */
} nf_usage_t;

typedef struct {
    bool ok;
    bool rejected;    /* not ok: REJECTED with REASON, not an error */
    char reason[48];  /* when rejected: age_restricted, unavailable, ... */
    bool retryable;   /* when not ok and not rejected */
    char error[1024]; /* when not ok */
    char note[512];   /* discover: why it stopped early, or "" */
} nf_outcome_t;

/* Discover for JOB ({"niche", "sub_niche", "options"}), skipping KNOWN (array
   of ids). Appends to VIDEOS ({"video_id", "channel_id", "meta"}) and
   CHANNELS ({"channel_id", "title", "country", ...}: stored whole; with
   "recent", the channel's recent uploads, and "recent_at", unless the
   channel is in FRESH: read within the day). */
void nf_discover (nf_scraper_t *s, const json_t *job, const json_t *known, const json_t *fresh,
                  json_t *videos, json_t *channels, nf_usage_t *usage, nf_outcome_t *out);

/* Scrape VIDEO_ID with its META for JOB. On success META_OUT gets the meta
   fields to merge and TRANSCRIPT the text (left empty when the video has no
   captions). */
void nf_scrape (nf_scraper_t *s, const char *video_id, const json_t *meta, const json_t *job,
                json_t *meta_out, nf_buf_t *transcript, nf_usage_t *usage, nf_outcome_t *out);

/* The template called NAME: NF_TEMPLATE_DIR/NAME.json, else the built-in
   one of that name. NULL with ERR. NAME: lower case, digits, - and _. */
nf_template_t *nf_scrape_template (const char *template_dir, const char *name, char *err,
                                   size_t errlen);

/* The client profiles: NF_TEMPLATE_DIR/youtube_clients.json, else the
   built-in file; NULL with ERR naming what is wrong in it. */
nf_clients_t *nf_scrape_clients (const char *template_dir, char *err, size_t errlen);

#endif
