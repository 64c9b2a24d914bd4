/*  nf_innertube: how nf-scraper asks YouTube for a video's caption tracks
    today, as pure functions over jansson values (no I/O):

      client profiles  the innertube clients to ask, as data
                       (templates/youtube_clients.json, or the same name in
                       NF_TEMPLATE_DIR): each a context for POST
                       {web}/youtubei/v1/player, and an ordered chain that
                       ends, by convention, in "watch" (the watch page).
                       Checked when loaded; a user fixes nicheflow by
                       editing the file when YouTube changes its clients.
      playability      a player answer's (or a watch page's)
                       playabilityStatus turned into an outcome with its
                       reason (nf_play_t); a captcha or consent page is
                       recognised in any HTML answer.
      tracks           which caption tracks are usable (not PO-token gated:
                       exp=xpe / exp=xpv in the baseUrl) and which one a job
                       takes for its ordered language list.

    Every function takes any input safely; strings returned are borrowed
    from the inputs or static. */
#ifndef NF_INNERTUBE_H
#define NF_INNERTUBE_H

#include "nf_util.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* ---- client profiles ---------------------------------------------------------- */

typedef struct nf_clients_t nf_clients_t;

/* Load profiles from JSON TEXT. NULL with ERR naming what is wrong. */
nf_clients_t *nf_clients_new (const char *text, size_t len, char *err, size_t errlen);
void nf_clients_destroy (nf_clients_t **self_p);

/* The chain's length and its I-th step: a client name, or "watch". */
size_t nf_clients_steps (const nf_clients_t *self);
const char *nf_clients_step (const nf_clients_t *self, size_t i);

/* The profile called NAME (an object with clientName, clientVersion,
   userAgent, optional context fields and headers), or NULL. */
const json_t *nf_clients_get (const nf_clients_t *self, const char *name);

/* The POST body asking PROFILE for VIDEO_ID (caller frees), and the
   headers to send with it (X-YouTube-Client-Name/Version, the profile's
   own) into HEADERS[CAP] as "Name: value" strings of BUF (NULL-terminated
   list; BUF must outlive them). */
char *nf_clients_body (const json_t *profile, const char *video_id, const char *hl);
void nf_clients_headers (const json_t *profile, nf_buf_t *buf, const char **headers, size_t cap);

/* ---- playability ---------------------------------------------------------------- */

typedef enum {
    NF_PLAY_OK,          /* go on */
    NF_PLAY_BLOCKED,     /* "not a bot" / captcha: retry later, elsewhere */
    NF_PLAY_AGE,         /* age gate: REJECTED age_restricted */
    NF_PLAY_UNAVAILABLE, /* ERROR, private, removed: REJECTED unavailable */
    NF_PLAY_UNPLAYABLE,  /* UNPLAYABLE and unknown statuses: next client */
    NF_PLAY_OTHER_VIDEO, /* the answer is about another video: skipped */
    NF_PLAY_MALFORMED,   /* no playabilityStatus at all */
} nf_play_t;

/* The reason word of an outcome ("blocked", "age_restricted", ...). */
const char *nf_play_name (nf_play_t p);

/* Classify PLAYER (a player answer or ytInitialPlayerResponse) for
   VIDEO_ID; *REASON gets YouTube's own words (borrowed, may be ""). */
nf_play_t nf_play_classify (const json_t *player, const char *video_id, const char **reason);

/* A Google captcha page ("unusual traffic", g-recaptcha) in LEN bytes. */
bool nf_yt_is_captcha (const char *body, size_t len);

/* An inline consent form (action="https://consent.youtube.com/s"): 1 with
   the cookie that answers it ("CONSENT=YES+<v>") in COOKIE, else 0. */
int nf_yt_consent_cookie (const char *body, size_t len, char *cookie, size_t cap);

/* ---- tracks --------------------------------------------------------------------- */

/* True when a track's baseUrl needs a PO token (exp=xpe or exp=xpv). */
bool nf_track_gated (const char *base_url);

/* Of TRACKS (captionTracks), the usable ones (a new array of borrowed
   tracks); *GATED gets how many were gated. */
json_t *nf_tracks_usable (const json_t *tracks, size_t *gated);

/* The choice for LANGS (comma list, in order of preference) among USABLE:
   manual tracks in those languages (exact tag, then primary subtag), then
   auto-generated ones, then, when TRANSLATE, the best translatable track
   with TLANG set to the first language (never when the source is already
   in it). NULL when none fits. */
typedef struct {
    const json_t *track; /* borrowed */
    char tlang[16];      /* "" or the translation target */
} nf_track_pick_t;
bool nf_tracks_pick (const json_t *usable, const char *langs, bool translate, nf_track_pick_t *out);

#endif
