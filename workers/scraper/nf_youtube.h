/*  nf_youtube: the YouTube formats nf-scraper reads, as pure functions:
    Data API v3 answers (search.list, videos.list, channels.list and error
    bodies), the caption track choice and timed text (srv1 and srv3 XML,
    json3). Each parser takes the body as bytes and either fills its output
    or returns -1 with a message; any input is safe. */
#ifndef NF_YOUTUBE_H
#define NF_YOUTUBE_H

#include "nf_util.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The longest a Short is, in seconds (3 minutes since October 2024). */
#define NF_YT_SHORT_MAX_S 180

/* Bytes of `description` kept in meta (cut at a character boundary). */
#define NF_YT_DESCRIPTION_MAX 1000

/* The first `reason` of an API error body ("quotaExceeded"), else "". */
void nf_yt_error_reason (const char *body, size_t len, char *out, size_t cap);

/* search.list: append each video id to IDS (strings); NEXT gets
   nextPageToken or "". */
int nf_yt_parse_search (const char *body, size_t len, json_t *ids, char *next, size_t nextcap,
                        char *err, size_t errlen);

/* videos.list: append {"video_id", "channel_id", "meta"} per item to OUT
   (meta fields as in proto/README.md; url from WEB_URL). */
int nf_yt_parse_videos (const char *body, size_t len, const char *web_url, json_t *out, char *err,
                        size_t errlen);

/* channels.list: append per item {"channel_id", "title", "country",
   "subscribers", "hidden_subscribers", "view_count", "video_count"} to OUT
   (the broker stores the map whole as the channel's data). */
int nf_yt_parse_channels (const char *body, size_t len, json_t *out, char *err, size_t errlen);
/* playlistItems.list: append each item's contentDetails.videoId to IDS
   (in the playlist's order: an uploads playlist is newest first). 0, or
   -1 with ERR when the answer is not a list. */
int nf_yt_parse_playlist (const char *body, size_t len, json_t *ids, char *err, size_t errlen);

/* The caption track to fetch from TRACKS (captionTracks array) for
   language LANG ("en"; matched on the primary subtag): a manual track in
   LANG, else an auto-generated one in LANG, else a manual one in any
   language, else any. Borrowed, or NULL when there is none. */
const json_t *nf_yt_pick_track (const json_t *tracks, const char *lang);

/* Timed text (XML srv1 <text start dur>, srv3 <p t d>, or json3 events)
   to lines "[m:ss] text". HTML entities inside the text are decoded once
   more with nf_html_unescape (nf_sanitize.h): the XML carries them escaped
   twice. The XML is read with libxml2's SAX2 callbacks (no tree), and a
   document that declares its own entities (a DTD) is refused. Returns the
   number of segments, or -1 with ERR (and nothing added to OUT) when the
   body is none of those formats. */
int nf_timedtext_parse (const char *body, size_t len, nf_buf_t *out, char *err, size_t errlen);

#endif
