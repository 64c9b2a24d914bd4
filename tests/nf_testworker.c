/*  nf-testworker: a scriptable worker for the broker's integration tests.
    It serves any stage of the table with plausible output, and misbehaves
    on request for the tasks whose video id contains --match (all tasks
    when --match is not given):

      --mode ok          succeed (default)
      --mode fail        retryable error while attempt <= --fail-times (default: always)
      --mode permanent   non-retryable error
      --mode reject      reject with reason "scripted_reject"
      --mode crash       _exit(99) in the middle of the task
      --mode hang        never reply (keeps heartbeating)
      --mode badfield    reply with a wrongly typed field
      --delay-ms MS      sleep before replying ("reply late" when > lease)
      --max-videos N     discover finds at most N new videos a call (as if
                         the quota ran out); it always skips known_ids (with
                         --fixture too)
      --tag TEXT         written into meta.<service>_by, to see who applied
      --fixture FILE     discover and scrape serve the videos, channels and
                         transcripts of a JSON file instead of made-up ones:
                         {"videos": [{"video_id", "channel_id", "meta",
                         "transcript"}], "channels": [{"channel_id", ...}]}
*/
#include "nf_log.h"
#include "nf_states.h"
#include "nf_worker.h"

#include <czmq.h>
#include <jansson.h>
#include <unistd.h>

typedef struct {
    const char *service; /* stage served */
    const char *mode;    /* misbehaviour for matching tasks */
    const char *match;   /* video id substring, or NULL for all */
    const char *tag;     /* written into meta */
    int fail_times;      /* for mode fail: attempts that fail */
    int delay_ms;        /* sleep before replying */
    int max_videos;      /* discover: at most this many new videos a call (0: no cap) */
    json_t *fixture;     /* --fixture data, or NULL */
} s_script_t;

/* Pack the JSON value J as msgpack. */
/* discover and scrape from the fixture. */
static void
s_fixture_stage (const s_script_t *s, const nf_task_t *task, nf_result_t *result)
{
    msgpack_packer pk;
    nf_result_output_packer (result, &pk);
    json_t *videos = json_object_get (s->fixture, "videos");
    if (strcmp (s->service, "discover") == 0) {
        /* The fixture's videos the job lacks, at most --max-videos. */
        const msgpack_object *known = nf_mp_get (task->input, "known_ids");
        json_t *out = json_array ();
        size_t i;
        json_t *v;
        json_array_foreach (videos, i, v)
        {
            const char *id = json_string_value (json_object_get (v, "video_id"));
            bool have = false;
            for (uint32_t k = 0;
                 known && known->type == MSGPACK_OBJECT_ARRAY && id && k < known->via.array.size;
                 k++)
                have = have || nf_mp_is_str (&known->via.array.ptr[k], id);
            if (have || (s->max_videos > 0 && json_array_size (out) >= (size_t) s->max_videos))
                continue;
            json_t *item = json_pack (
                "{s:O, s:O, s:O}", "video_id", json_object_get (v, "video_id"), "channel_id",
                json_object_get (v, "channel_id"), "meta", json_object_get (v, "meta"));
            json_array_append_new (out, item);
        }
        msgpack_pack_map (&pk, 2);
        nf_pk_str (&pk, "videos");
        nf_pk_json (&pk, out);
        nf_pk_str (&pk, "channels");
        nf_pk_json (&pk, json_object_get (s->fixture, "channels"));
        json_decref (out);
        return;
    }
    size_t i;
    json_t *v;
    json_array_foreach (videos, i, v)
    {
        if (strcmp (json_string_value (json_object_get (v, "video_id")), task->video_id) != 0)
            continue;
        json_t *t = json_object_get (v, "transcript");
        msgpack_pack_map (&pk, json_is_string (t) ? 1 : 0);
        if (json_is_string (t)) {
            nf_pk_str (&pk, "transcript");
            nf_pk_strn (&pk, json_string_value (t), json_string_length (t));
        }
        return;
    }
    nf_result_error (result, false, "video %s is not in the fixture", task->video_id);
}

static void
s_meta (msgpack_packer *pk, const s_script_t *s, const nf_task_t *task)
{
    char key[64];
    snprintf (key, sizeof key, "%s_by", s->service);
    nf_pk_str (pk, "meta");
    msgpack_pack_map (pk, 2);
    nf_pk_kv_str (pk, key, s->tag);
    snprintf (key, sizeof key, "%s_attempt", s->service);
    nf_pk_kv_int (pk, key, task->attempt);
}

static void
s_stage (const nf_task_t *task, nf_result_t *result, void *arg)
{
    const s_script_t *s = (const s_script_t *) arg;
    bool hit = !s->match || (task->video_id && strstr (task->video_id, s->match));
    if (hit && s->delay_ms)
        zclock_sleep (s->delay_ms);
    if (hit && strcmp (s->mode, "crash") == 0)
        _exit (99);
    if (hit && strcmp (s->mode, "hang") == 0)
        while (true)
            sleep (60);
    if (hit && strcmp (s->mode, "fail") == 0
        && (s->fail_times == 0 || task->attempt <= s->fail_times)) {
        nf_result_error (result, true, "scripted failure on attempt %lld",
                         (long long) task->attempt);
        return;
    }
    if (hit && strcmp (s->mode, "permanent") == 0) {
        nf_result_error (result, false, "scripted permanent failure");
        return;
    }
    if (hit && strcmp (s->mode, "reject") == 0) {
        nf_result_reject (result, "scripted_reject");
        return;
    }
    if (s->fixture
        && (strcmp (s->service, "discover") == 0 || strcmp (s->service, "scrape") == 0)) {
        s_fixture_stage (s, task, result);
        return;
    }
    msgpack_packer pk;
    nf_result_output_packer (result, &pk);
    if (strcmp (s->service, "discover") == 0) {
        /* Like nf-scraper: skip the ids the job has, find what is missing
           to reach count (at most --max-videos, as if the quota ran out). */
        int64_t count = 20;
        const msgpack_object *opts = nf_mp_get (task->job, "options");
        nf_mp_get_int (opts, "count", &count);
        const msgpack_object *known = nf_mp_get (task->input, "known_ids");
        uint32_t nknown = known && known->type == MSGPACK_OBJECT_ARRAY ? known->via.array.size : 0;
        int64_t need = count - (int64_t) nknown;
        if (need < 0)
            need = 0;
        if (s->max_videos > 0 && need > s->max_videos)
            need = s->max_videos;
        msgpack_pack_map (&pk, 2);
        nf_pk_str (&pk, "videos");
        msgpack_pack_array (&pk, (size_t) need);
        for (int64_t i = 0, made = 0; made < need; i++) {
            char id[32], ch[32];
            snprintf (id, sizeof id, "v%05lld", (long long) i);
            bool have = false;
            for (uint32_t k = 0; k < nknown && !have; k++)
                have = nf_mp_is_str (&known->via.array.ptr[k], id);
            if (have)
                continue;
            made++;
            snprintf (ch, sizeof ch, "c%lld", (long long) (i % 3));
            msgpack_pack_map (&pk, 3);
            nf_pk_kv_str (&pk, "video_id", id);
            nf_pk_kv_str (&pk, "channel_id", ch);
            nf_pk_str (&pk, "meta");
            msgpack_pack_map (&pk, 2);
            nf_pk_kv_str (&pk, "title", id);
            nf_pk_kv_int (&pk, "views", 1000 + i);
        }
        nf_pk_str (&pk, "channels");
        msgpack_pack_array (&pk, 3);
        for (int i = 0; i < 3; i++) {
            char ch[16];
            snprintf (ch, sizeof ch, "c%d", i);
            msgpack_pack_map (&pk, 2);
            nf_pk_kv_str (&pk, "channel_id", ch);
            nf_pk_kv_str (&pk, "country", "US");
        }
        msgpack_packer upk;
        nf_result_usage_packer (result, &upk);
        msgpack_pack_map (&upk, 2);
        nf_pk_kv_int (&upk, "quota_units", 100);
        nf_pk_kv_int (&upk, "http_requests", 3);
        return;
    }
    if (strcmp (s->service, "analyze") == 0 || strcmp (s->service, "export") == 0) {
        const msgpack_object *videos = nf_mp_get (task->input, "videos");
        uint32_t n = videos && videos->type == MSGPACK_OBJECT_ARRAY ? videos->via.array.size : 0;
        int64_t top = 10;
        nf_mp_get_int (nf_mp_get (task->job, "options"), "top_n", &top);
        bool export = strcmp (s->service, "export") == 0;
        msgpack_pack_map (&pk, export ? 2 : 1);
        nf_pk_str (&pk, "videos");
        msgpack_pack_array (&pk, n);
        for (uint32_t i = 0; i < n; i++) {
            const char *id;
            size_t len;
            nf_mp_get_str (&videos->via.array.ptr[i], "video_id", &id, &len);
            msgpack_pack_map (&pk, export ? 1 : 4);
            nf_pk_str (&pk, "video_id");
            nf_pk_strn (&pk, id, len);
            if (!export) {
                nf_pk_kv_str (&pk, "status", (int64_t) i < top ? "ok" : "keep");
                nf_pk_kv_int (&pk, "rank", (int64_t) i + 1);
                nf_pk_str (&pk, "composite");
                msgpack_pack_double (&pk, 100.0 - i);
            }
        }
        if (export) {
            char body[64];
            snprintf (body, sizeof body, "{\"videos\":%u}", n);
            nf_pk_str (&pk, "files");
            msgpack_pack_map (&pk, 1);
            nf_pk_str (&pk, "json");
            msgpack_pack_bin (&pk, strlen (body));
            msgpack_pack_bin_body (&pk, body, strlen (body));
        }
        return;
    }
    bool bad = hit && strcmp (s->mode, "badfield") == 0;
    msgpack_pack_map (&pk, 2);
    s_meta (&pk, s, task);
    if (strcmp (s->service, "scrape") == 0)
        nf_pk_kv_str (&pk, "transcript", "hello world");
    else if (strcmp (s->service, "sanitize") == 0) {
        nf_pk_str (&pk, "quality");
        if (bad)
            nf_pk_str (&pk, "not a number");
        else
            msgpack_pack_double (&pk, 80.0);
    }
    else if (strcmp (s->service, "geo") == 0)
        nf_pk_kv_int (&pk, "tier1_validated", 1);
    else {
        nf_pk_str (&pk, "ai");
        msgpack_pack_map (&pk, 1);
        nf_pk_kv_str (&pk, "hook", "scripted");
    }
}

int
main (int argc, char **argv)
{
    s_script_t script = {.mode = "ok", .tag = "testworker"};
    /* Our own flags are consumed here; the rest goes to the standard loader. */
    char **rest = calloc ((size_t) argc + 1, sizeof (char *));
    int nrest = 0;
    rest[nrest++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp (a, "--mode") == 0 && v)
            script.mode = argv[++i];
        else if (strcmp (a, "--match") == 0 && v)
            script.match = argv[++i];
        else if (strcmp (a, "--tag") == 0 && v)
            script.tag = argv[++i];
        else if (strcmp (a, "--fail-times") == 0 && v)
            script.fail_times = atoi (argv[++i]);
        else if (strcmp (a, "--max-videos") == 0 && v)
            script.max_videos = atoi (argv[++i]);
        else if (strcmp (a, "--delay-ms") == 0 && v)
            script.delay_ms = atoi (argv[++i]);
        else if (strcmp (a, "--fixture") == 0 && v) {
            json_error_t jerr;
            script.fixture = json_load_file (argv[++i], 0, &jerr);
            if (!script.fixture) {
                fprintf (stderr, "nf-testworker: %s: %s\n", argv[i], jerr.text);
                free (rest);
                return 2;
            }
        }
        else if (!script.service && a[0] != '-')
            script.service = a;
        else
            rest[nrest++] = argv[i];
    }
    if (!script.service || !nf_stage_find (script.service)) {
        fprintf (stderr, "usage: nf-testworker SERVICE [--mode M] [--match S] [--fail-times N] "
                         "[--delay-ms MS] [--tag T] [settings]\n");
        free (rest);
        return 2;
    }
    int rc = nf_worker_main (nrest, rest, "nf-testworker", script.service, NULL, s_stage, &script);
    json_decref (script.fixture);
    free (rest);
    return rc;
}
