/*  fuzz_youtube: the Data API parsers (search.list, videos.list,
    channels.list, error bodies) and the caption track choice. Each input is
    fed to every parser; whatever they accept must be what the broker can
    store: strings valid UTF-8, ids non-empty. */
#include "nf_fuzz.h"
#include "nf_youtube.h"

#include <string.h>

static void
s_check_strings (const json_t *v, int depth)
{
    NF_FUZZ_CHECK (depth < 64);
    if (json_is_string (v))
        NF_FUZZ_CHECK (nf_utf8_valid (json_string_value (v), json_string_length (v)));
    else if (json_is_array (v)) {
        size_t i;
        const json_t *e;
        json_array_foreach (v, i, e)
        {
            s_check_strings (e, depth + 1);
        }
    }
    else if (json_is_object (v)) {
        const char *k;
        const json_t *e;
        json_object_foreach ((json_t *) v, k, e)
        {
            s_check_strings (e, depth + 1);
        }
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *body = (const char *) data;
    char err[256], next[256], reason[128];

    json_t *ids = json_array ();
    if (nf_yt_parse_search (body, size, ids, next, sizeof next, err, sizeof err) == 0) {
        size_t i;
        const json_t *id;
        json_array_foreach (ids, i, id)
        {
            NF_FUZZ_CHECK (json_is_string (id) && json_string_length (id) > 0);
        }
        s_check_strings (ids, 0);
        NF_FUZZ_CHECK (strlen (next) < sizeof next);
    }
    json_decref (ids);

    json_t *videos = json_array ();
    if (nf_yt_parse_videos (body, size, "https://www.youtube.com", videos, err, sizeof err) == 0) {
        size_t i;
        const json_t *v;
        json_array_foreach (videos, i, v)
        {
            NF_FUZZ_CHECK (json_is_string (json_object_get (v, "video_id")));
            NF_FUZZ_CHECK (json_is_object (json_object_get (v, "meta")));
        }
        s_check_strings (videos, 0);
    }
    json_decref (videos);

    json_t *chans = json_array ();
    if (nf_yt_parse_channels (body, size, chans, err, sizeof err) == 0) {
        size_t i;
        const json_t *c;
        json_array_foreach (chans, i, c)
        {
            NF_FUZZ_CHECK (json_is_string (json_object_get (c, "channel_id")));
        }
        s_check_strings (chans, 0);
    }
    json_decref (chans);

    nf_yt_error_reason (body, size, reason, sizeof reason);
    NF_FUZZ_CHECK (strlen (reason) < sizeof reason);

    /* The track choice reads captionTracks arrays of any shape. */
    json_error_t jerr;
    json_t *doc = json_loadb (body, size, JSON_DECODE_ANY, &jerr);
    if (doc) {
        nf_yt_pick_track (doc, "en");
        nf_yt_pick_track (doc, "");
        json_decref (doc);
    }
    return 0;
}
