/*  nf_ytdata: the deterministic world of nf-ytsim. Everything a video or a
    channel is follows from the seed, the search query and its index, so two
    simulators started with the same seed serve byte-identical answers.

    Identifiers carry where they come from: a video id (11 base64url
    characters, 66 bits) holds a 42-bit query tag and a scrambled 24-bit
    index; a channel id ("UC" and 22 characters) holds the query tag and the
    channel's index. The query text behind a tag is remembered by the
    simulator when the query is searched (titles are written from it). */
#ifndef NF_YTDATA_H
#define NF_YTDATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NF_YT_TITLE_MAX 300

typedef struct {
    uint64_t seed; /* --seed */
    int catalog;   /* videos per query (the search universe) */
    double now;    /* the simulated "now": published dates lie before it */
} nf_ytworld_t;

typedef struct {
    char id[12];         /* 11 characters */
    uint64_t tag;        /* query tag */
    uint32_t index;      /* position in the query's catalog */
    char channel_id[25]; /* "UC" + 22 characters */
    uint32_t channel_index;
    char title[NF_YT_TITLE_MAX];
    double published; /* epoch seconds */
    int duration_s;
    int64_t views, likes, comments;
    bool likes_hidden, comments_hidden;
    const char *audio_lang;   /* BCP 47 or NULL */
    const char *caption_lang; /* language of the spoken text */
    int captions;             /* 0 none, 1 auto-generated only, 2 manual and auto */
    bool is_private;          /* search finds it, videos.list does not */
    bool unavailable;         /* the watch page says "Video unavailable" */
    int transcript_kind;      /* 0 clean speech, 1 noisy, 2 very short */
    int markup;               /* 0 standard watch page, 1 alternate (template fallback) */
} nf_ytvideo_t;

typedef struct {
    char id[25];
    uint64_t tag;
    uint32_t index;
    char title[128];
    const char *country; /* alpha-2 or NULL */
    int64_t subscribers;
    bool hidden_subscribers;
    int64_t view_count;
    int64_t video_count;
} nf_ytchannel_t;

/* The tag of query Q (case and surrounding space ignored). */
uint64_t nf_yt_query_tag (const nf_ytworld_t *w, const char *q);

/* Video INDEX of the query with TAG; QUERY is its text (titles), may be NULL. */
void nf_yt_video (const nf_ytworld_t *w, uint64_t tag, uint32_t index, const char *query,
                  nf_ytvideo_t *v);
void nf_yt_channel (const nf_ytworld_t *w, uint64_t tag, uint32_t index, const char *query,
                    nf_ytchannel_t *c);

/* Decode ids back to tag and index. 0, or -1 when ID is not one of ours. */
int nf_yt_video_decode (const char *id, uint64_t *tag, uint32_t *index);
int nf_yt_channel_decode (const char *id, uint64_t *tag, uint32_t *index);

/* The spoken text of V as timed segments: calls FN for each segment
   (start and duration in milliseconds, UTF-8 text). ASR: the
   auto-generated track (lower case, no punctuation). */
typedef void (nf_yt_segment_fn) (int64_t start_ms, int64_t dur_ms, const char *text, void *arg);
void nf_yt_transcript (const nf_ytworld_t *w, const nf_ytvideo_t *v, const char *query, bool asr,
                       nf_yt_segment_fn *fn, void *arg);

/* Channels of a query's catalog. */
uint32_t nf_yt_channel_count (const nf_ytworld_t *w);

/* A channel's uploads: its videos of the catalog (the ones search finds)
   and NF_YT_UPLOADS more that only its uploads playlist lists, their
   indices from NF_YT_UPLOAD_BASE up (channel c's k-th: BASE + 64 c + k,
   the newest first, published every few days, a few of them Shorts). */
#define NF_YT_UPLOAD_BASE (UINT32_C (1) << 23)
#define NF_YT_UPLOADS     48
/* Whether INDEX names a video of the world (in the catalog, or an upload). */
bool nf_yt_video_exists (const nf_ytworld_t *w, uint32_t index);
/* The uploads of channel CHANNEL of the query with TAG, newest first:
   up to CAP video indices into OUT; returns how many there are in all. */
size_t nf_yt_uploads (const nf_ytworld_t *w, uint64_t tag, uint32_t channel, uint32_t *out,
                      size_t cap);

/* splitmix64 of X: the simulator's only randomness. */
uint64_t nf_yt_mix (uint64_t x);

#endif
