/*  Golden tests on real YouTube answers: every file of
    ../shared/fixtures/youtube (watch pages, innertube player answers, timed
    text, Data API bodies; see that folder's README) through the scraper's
    real parsers and classification, each with the outcome the file shows.
    The folder is read at test time, never copied into the repository; when
    it is absent (a clone without ../shared) the test says so and is skipped
    (exit 77, ctest's SKIP_RETURN_CODE).

    test_fixtures [DIR]   DIR defaults to NF_FIXTURES, else
                          ../shared/fixtures/youtube beside the source tree. */
#include "nf_http.h"
#include "nf_innertube.h"
#include "nf_scrape.h"
#include "nf_template.h"
#include "nf_test.h"
#include "nf_util.h"
#include "nf_youtube.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *s_dir;
static char s_seen[64][160]; /* the distinct files read */
static int s_nseen;

static void
s_read (const char *rel, nf_buf_t *b)
{
    char path[4096];
    snprintf (path, sizeof path, "%s/%s", s_dir, rel);
    nf_buf_reset (b);
    if (nf_buf_read_file (b, path, 8 << 20) != 0) {
        printf ("cannot read %s\n", path);
        nf_test_failed++;
        return;
    }
    for (int i = 0; i < s_nseen; i++)
        if (strcmp (s_seen[i], rel) == 0)
            return;
    if (s_nseen < 64)
        snprintf (s_seen[s_nseen++], sizeof s_seen[0], "%s", rel);
}

/* A watch page through the real template: its player response. */
static json_t *
s_watch_player (nf_template_t *watch, const char *rel, json_t **page_out)
{
    nf_buf_t b;
    nf_buf_init (&b);
    s_read (rel, &b);
    char err[512] = "";
    json_t *page = nf_template_apply (watch, b.data ? b.data : "", b.len, rel, err, sizeof err);
    if (!page)
        printf ("%s: %s\n", rel, err);
    CHECK (page != NULL);
    nf_buf_free (&b);
    *page_out = page;
    return json_object_get (page, "player");
}

static json_t *
s_player_file (const char *rel)
{
    nf_buf_t b;
    nf_buf_init (&b);
    s_read (rel, &b);
    json_t *p = json_loadb (b.data ? b.data : "", b.len, 0, NULL);
    CHECK (json_is_object (p));
    nf_buf_free (&b);
    return p;
}

static const json_t *
s_tracks (const json_t *player)
{
    return json_object_get (
        json_object_get (json_object_get (player, "captions"), "playerCaptionsTracklistRenderer"),
        "captionTracks");
}

/* Expect PLAYER to classify as WANT with REASON (a substring, or NULL), with
   NTRACKS tracks of which NGATED gated. */
static void
s_expect (const char *what, const json_t *player, const char *video_id, nf_play_t want,
          const char *reason, size_t ntracks, size_t ngated)
{
    const char *got_reason = "";
    nf_play_t got = nf_play_classify (player, video_id, &got_reason);
    if (got != want || (reason && !strstr (got_reason, reason)))
        printf ("%s: %s (%s), want %s (%s)\n", what, nf_play_name (got), got_reason,
                nf_play_name (want), reason ? reason : "");
    CHECK_STR (nf_play_name (got), nf_play_name (want));
    if (reason)
        CHECK (strstr (got_reason, reason) != NULL);
    size_t gated = 0;
    json_t *usable = nf_tracks_usable (s_tracks (player), &gated);
    CHECK_INT ((long long) json_array_size (s_tracks (player)), (long long) ntracks);
    CHECK_INT ((long long) gated, (long long) ngated);
    CHECK_INT ((long long) json_array_size (usable), (long long) (ntracks - ngated));
    json_decref (usable);
}

/* The language of the track LANGS picks from PLAYER's usable tracks ("" when
   none), with its kind and translation target. */
static void
s_pick (const json_t *player, const char *langs, bool translate, char *out, size_t cap)
{
    size_t gated;
    json_t *usable = nf_tracks_usable (s_tracks (player), &gated);
    nf_track_pick_t p;
    if (nf_tracks_pick (usable, langs, translate, &p)) {
        const char *kind = json_string_value (json_object_get (p.track, "kind"));
        snprintf (out, cap, "%s/%s%s%s",
                  json_string_value (json_object_get (p.track, "languageCode")),
                  kind ? kind : "manual", p.tlang[0] ? "->" : "", p.tlang);
    }
    else
        snprintf (out, cap, "%s", "");
    json_decref (usable);
}

static void
test_watch_pages (nf_template_t *watch)
{
    json_t *page;
    char pick[64];
    const json_t *p = s_watch_player (watch, "watch/2025-06-11_normal_exp-xpe.html", &page);
    s_expect ("2025-06-11 watch", p, NULL, NF_PLAY_OK, NULL, 9, 9); /* every track gated */
    s_pick (p, "en", true, pick, sizeof pick);
    CHECK_STR (pick, "");
    json_decref (page);

    p = s_watch_player (watch, "watch/2025-02-27_normal.html", &page);
    s_expect ("2025-02-27 watch", p, NULL, NF_PLAY_OK, NULL, 9, 0); /* the same video, before */
    s_pick (p, "en", false, pick, sizeof pick);
    CHECK_STR (pick, "en/manual");
    s_pick (p, "de,en", false, pick, sizeof pick); /* in order of preference */
    CHECK_STR (pick, "de/manual");
    CHECK (json_string_value (json_object_get (page, "title")) != NULL);
    json_decref (page);

    p = s_watch_player (watch, "watch/2025-02_age_restricted.html", &page);
    s_expect ("age watch", p, NULL, NF_PLAY_AGE, "confirm your age", 0, 0);
    json_decref (page);
    p = s_watch_player (watch, "watch/2025-02_bot_check.html", &page);
    s_expect ("bot watch", p, NULL, NF_PLAY_BLOCKED, "not a bot", 0, 0);
    json_decref (page);
    p = s_watch_player (watch, "watch/2025-02_unavailable.html", &page);
    s_expect ("unavailable watch", p, NULL, NF_PLAY_UNAVAILABLE, "Video unavailable", 0, 0);
    json_decref (page);
    p = s_watch_player (watch, "watch/2025-02_no_captions.html", &page);
    s_expect ("no captions watch", p, NULL, NF_PLAY_OK, NULL, 0, 0);
    json_decref (page);

    p = s_watch_player (watch, "watch/2023-12_arabic_asr_only.html", &page);
    s_expect ("arabic watch", p, NULL, NF_PLAY_OK, NULL, 1, 0);
    s_pick (p, "en,en-GB", false, pick, sizeof pick);
    CHECK_STR (pick, ""); /* an en job: no_transcript_in_language, not the Arabic text */
    s_pick (p, "ar", false, pick, sizeof pick);
    CHECK_STR (pick, "ar/asr");
    s_pick (p, "en", true, pick, sizeof pick);
    const json_t *t0 = json_array_get (s_tracks (p), 0);
    /* It offers no translation languages: translatable only if YouTube says so. */
    CHECK_STR (pick, json_is_true (json_object_get (t0, "isTranslatable")) ? "ar/asr->en" : "");
    json_decref (page);

    nf_buf_t b;
    nf_buf_init (&b);
    char cookie[300] = "";
    s_read ("watch/consent_interstitial.html", &b);
    CHECK_INT (nf_yt_consent_cookie (b.data, b.len, cookie, sizeof cookie), 1);
    CHECK_STR (cookie, "CONSENT=YES+cb.20210328-17-p0.de+FX+119");
    CHECK (!nf_yt_is_captcha (b.data, b.len));
    s_read ("watch/captcha_too_many_requests.html", &b);
    CHECK (nf_yt_is_captcha (b.data, b.len));
    CHECK (nf_http_is_block_page (b.data, b.len));
    CHECK_INT (nf_yt_consent_cookie (b.data, b.len, cookie, sizeof cookie), 0);
    s_read ("watch/2025-02-27_normal.html", &b); /* a normal page is neither */
    CHECK (!nf_yt_is_captcha (b.data, b.len) && !nf_http_is_block_page (b.data, b.len));
    CHECK_INT (nf_yt_consent_cookie (b.data, b.len, cookie, sizeof cookie), 0);
    nf_buf_free (&b);
}

static void
test_player_answers (void)
{
    char pick[64];
    json_t *p = s_player_file ("player/android_2025-06-11_normal.json");
    /* The same video's watch page had 9 of 9 gated; the ANDROID answer none. */
    s_expect ("android normal", p, "GJLlxj_dtq8", NF_PLAY_OK, NULL, 9, 0);
    s_pick (p, "en", false, pick, sizeof pick);
    CHECK_STR (pick, "en/manual");
    const char *r;
    CHECK_STR (nf_play_name (nf_play_classify (p, "someOtherId", &r)), "other_video");
    json_decref (p);
    p = s_player_file ("player/android_2025-06-11_two_tracks.json");
    s_expect ("android two tracks", p, "F1xioXWb8CY", NF_PLAY_OK, NULL, 2, 0);
    s_pick (p, "en-GB", false, pick, sizeof pick); /* the primary subtag matches */
    CHECK_STR (pick, "en/manual");
    json_decref (p);
    p = s_player_file ("player/android_2025-06-11_no_captions.json");
    s_expect ("android no captions", p, "dsMFmonKDD4", NF_PLAY_OK, NULL, 0, 0);
    json_decref (p);
    p = s_player_file ("player/android_2025-06-11_age_restricted.json");
    s_expect ("android age", p, "Njp5uhTorCo", NF_PLAY_AGE, "inappropriate for some users", 0, 0);
    json_decref (p);
    p = s_player_file ("player/android_2025-06-11_bot_check.json");
    s_expect ("android bot check", p, NULL, NF_PLAY_BLOCKED, "not a bot", 0, 0);
    json_decref (p);
    p = s_player_file ("player/android_2025-06-11_unavailable.json");
    s_expect ("android unavailable", p, NULL, NF_PLAY_UNAVAILABLE, "This video is unavailable", 0,
              0);
    json_decref (p);
    p = s_player_file ("player/android_2025-06-11_unplayable_custom_edited.json");
    s_expect ("android unplayable", p, NULL, NF_PLAY_UNPLAYABLE, "Custom Reason", 0, 0);
    json_decref (p);
}

/* Timed text REL parses to at least MIN segments (exactly, when EXACT). */
static void
s_timedtext (const char *rel, int want, bool exact)
{
    nf_buf_t b, out;
    nf_buf_init (&b);
    nf_buf_init (&out);
    s_read (rel, &b);
    char err[256] = "";
    int n = nf_timedtext_parse (b.data ? b.data : "", b.len, &out, err, sizeof err);
    if (exact ? n != want : n < want)
        printf ("%s: %d segments (%s), want %s%d\n", rel, n, err, exact ? "" : ">= ", want);
    CHECK (exact ? n == want : n >= want);
    CHECK (!out.data || (!strstr (out.data, "&amp;") && !strstr (out.data, "&#39;")));
    nf_buf_free (&b);
    nf_buf_free (&out);
}

static void
test_timed_text (void)
{
    s_timedtext ("timedtext/srv1_manual.xml", 47, true);
    s_timedtext ("timedtext/srv1_made_up_text.xml", 1, false);
    s_timedtext ("timedtext/srv3_asr_fr.xml", 1, false);
    s_timedtext ("timedtext/srv3_music_tags.xml", 1, false);
    s_timedtext ("timedtext/srv3_zh_w_element.xml", 1, false);
    s_timedtext ("timedtext/json3_manual.json", 100, false);
    nf_buf_t b;
    nf_buf_init (&b);
    s_read ("timedtext/empty_200_body.txt", &b);
    /* What a gated request gets: blank, its own outcome before any parser. */
    CHECK (nf_http_blank (b.data, b.len));
    nf_buf_free (&b);
}

static void
test_api_bodies (void)
{
    nf_buf_t b;
    nf_buf_init (&b);
    char err[256], next[128], reason[64];
    json_t *ids = json_array ();
    s_read ("api/pyyt__search_search_by_keywords_p1.json", &b);
    CHECK_INT (nf_yt_parse_search (b.data, b.len, ids, next, sizeof next, err, sizeof err), 0);
    CHECK (json_array_size (ids) > 0 && next[0] != 0);
    json_t *videos = json_array ();
    s_read ("api/pyyt__videos_videos_info_multi.json", &b);
    CHECK_INT (
        nf_yt_parse_videos (b.data, b.len, "https://www.youtube.com", videos, err, sizeof err), 0);
    CHECK (json_array_size (videos) >= 2);
    const json_t *meta = json_object_get (json_array_get (videos, 0), "meta");
    CHECK (json_string_value (json_object_get (meta, "title")) != NULL);
    /* part=snippet,player only: no statistics, so no views (never a made-up 0). */
    CHECK (json_object_get (meta, "views") == NULL);
    json_t *channels = json_array ();
    s_read ("api/pyyt__channel_info_multi.json", &b);
    CHECK_INT (nf_yt_parse_channels (b.data, b.len, channels, err, sizeof err), 0);
    CHECK (json_array_size (channels) >= 2);
    s_read ("api/real_quotaExceeded_from_log.json", &b);
    nf_yt_error_reason (b.data, b.len, reason, sizeof reason);
    CHECK_STR (reason, "quotaExceeded");
    s_read ("api/pyyt__error_permission_resp.json", &b);
    nf_yt_error_reason (b.data, b.len, reason, sizeof reason);
    CHECK (reason[0] != 0);
    json_decref (ids);
    json_decref (videos);
    json_decref (channels);
    /* Every other body of the folder, by what it is: each parses, with items. */
    static const char *const rest[] = {"search_search_by_developer",
                                       "search_search_by_keywords_p2",
                                       "search_search_videos_by_channel",
                                       "videos_videos_chart_paged_1",
                                       "videos_videos_info_single",
                                       "model_video_api_response",
                                       "channel_info_single",
                                       "channels_info",
                                       "channels_info_multiple",
                                       "model_video_info"};
    for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++) {
        char rel[200];
        snprintf (rel, sizeof rel, "api/pyyt__%s.json", rest[i]);
        s_read (rel, &b);
        json_t *out = json_array ();
        int rc;
        if (strncmp (rest[i], "search", 6) == 0)
            rc = nf_yt_parse_search (b.data, b.len, out, next, sizeof next, err, sizeof err);
        else if (strncmp (rest[i], "channel", 7) == 0)
            rc = nf_yt_parse_channels (b.data, b.len, out, err, sizeof err);
        else
            rc =
                nf_yt_parse_videos (b.data, b.len, "https://www.youtube.com", out, err, sizeof err);
        if (rc != 0 || (json_array_size (out) == 0) != (strcmp (rest[i], "model_video_info") == 0))
            printf ("%s: rc %d, %zu items (%s)\n", rel, rc, json_array_size (out), err);
        /* model_video_info is one video resource, not a list: no items. */
        if (strcmp (rest[i], "model_video_info") == 0)
            CHECK (rc == 0 && json_array_size (out) == 0);
        else
            CHECK (rc == 0 && json_array_size (out) > 0);
        json_decref (out);
    }
    nf_buf_free (&b);
}

/* The built-in client profiles load, and a broken file says what is wrong. */
static void
test_client_profiles (void)
{
    char err[512] = "";
    nf_clients_t *c = nf_scrape_clients ("", err, sizeof err);
    CHECK (c != NULL);
    if (!c) {
        printf ("the built-in client profiles: %s\n", err);
        return;
    }
    CHECK (nf_clients_steps (c) >= 2);
    CHECK_STR (nf_clients_step (c, nf_clients_steps (c) - 1), "watch");
    const json_t *first = nf_clients_get (c, nf_clients_step (c, 0));
    char *body = nf_clients_body (first, "GJLlxj_dtq8", "en");
    json_t *doc = json_loads (body, 0, NULL);
    CHECK_STR (json_string_value (json_object_get (doc, "videoId")), "GJLlxj_dtq8");
    CHECK (json_string_value (json_object_get (
               json_object_get (json_object_get (doc, "context"), "client"), "clientName"))
           != NULL);
    json_decref (doc);
    free (body);
    nf_clients_destroy (&c);
    static const char *const bad[][2] = {
        {"{\"chain\": [], \"clients\": {}}", "needs \"chain\""},
        {"{\"chain\": [\"IOS\"], \"clients\": {}}", "'IOS' is not a client"},
        {"{\"chain\": [\"A\"], \"clients\": {\"A\": {\"context\": {\"clientName\": \"A\"}, "
         "\"user_agent\": \"x\"}}}",
         "clientName and clientVersion"},
        {"{\"chain\": [\"watch\", \"watch\"], \"clients\": {}}", "named twice"},
        {"not json", "not JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = nf_clients_new (bad[i][0], strlen (bad[i][0]), err, sizeof err);
        CHECK (c == NULL && strstr (err, bad[i][1]) != NULL);
        if (c || !strstr (err, bad[i][1]))
            printf ("profile %zu: '%s'\n", i, err);
        nf_clients_destroy (&c);
    }
    CHECK (nf_track_gated ("https://www.youtube.com/api/timedtext?v=x&exp=xpe&sig=1"));
    CHECK (nf_track_gated ("/api/timedtext?exp=xpv&v=x"));
    CHECK (!nf_track_gated ("https://www.youtube.com/api/timedtext?v=x&expire=1700000000&sig=1"));
}

/* How many regular files lie below DIR (recursively). */
static int
s_count_files (const char *dir)
{
    DIR *d = opendir (dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir (d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf (path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat (path, &st) == 0)
            n += S_ISDIR (st.st_mode) ? s_count_files (path) : strcmp (e->d_name, "README.md") != 0;
    }
    if (d)
        closedir (d);
    return n;
}

int
main (int argc, char **argv)
{
    s_dir = argc > 1 ? argv[1] : getenv ("NF_FIXTURES");
    struct stat st;
    if (!s_dir || stat (s_dir, &st) != 0 || !S_ISDIR (st.st_mode)) {
        printf ("skipped: no fixtures folder at %s (a clone without ../shared); CI has it\n",
                s_dir ? s_dir : "(none given)");
        return 77;
    }
    char err[512];
    nf_template_t *watch = nf_scrape_template ("", "youtube_watch", err, sizeof err);
    CHECK (watch != NULL);
    test_client_profiles ();
    test_watch_pages (watch);
    test_player_answers ();
    test_timed_text ();
    test_api_bodies ();
    nf_template_destroy (&watch);
    int total = s_count_files (s_dir);
    /* Every file of the folder is read above: a new capture needs its case here. */
    printf ("%d of the %d files in %s read\n", s_nseen, total, s_dir);
    CHECK_INT (s_nseen, total);
    return NF_TEST_END ();
}
